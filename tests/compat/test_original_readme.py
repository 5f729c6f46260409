"""PaddleOCR's 2020 README, followed to the letter: ``original_readme.sh`` holds its commands as
written, run in a folder holding the kit's scripts and samples (as a user who copied them next
to the README would have them) with the venv's ``python`` first on PATH, in a network namespace
of its own. The models come from ``--get_model`` and its tarballs, the conversion runs on a
2020-layout copy of the bundled rec model (``model`` + ``params``), and every service it starts
is answered through ``ocr_web_client.py``."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from pdserving import package
from pdserving.client import Client
from pdserving.launcher import ServerProcess
from pdserving.net import free_port
from pdserving.ops.ctc import ctc_decode, load_dictionary
from pdserving.ops.resize import rec_batches
from tests.helpers.images import text_line
from tests.helpers.netns import in_own_network
from tests.helpers.paths import ROOT, SAMPLES

pytestmark = pytest.mark.netns

README_SCRIPT = Path(__file__).with_name("original_readme.sh")
SCRIPTS = ["ocr_web_server.py", "ocr_local_server.py", "ocr_web_client.py", "det_web_server.py",
           "det_local_server.py", "rec_web_server.py", "rec_local_server.py"]
SECTIONS = ["standard", "fast", *SCRIPTS[3:]]
LABELS: dict[str, list[str]] = json.loads((SAMPLES / "labels.json").read_text("utf-8"))


def write_2020_rec_tarball(path: Path) -> None:
    """``ch_rec_r34_vd_crnn_infer.tar`` as the 2020 README downloaded it: one folder holding
    ``model`` and ``params`` (here the bundled PP-OCRv4 rec inference model's files)."""
    source = package.source_folder("ocr_rec")
    with tarfile.open(path, "w") as tar:
        tar.add(source / "inference.pdmodel", "ch_rec_r34_vd_crnn/model")
        tar.add(source / "inference.pdiparams", "ch_rec_r34_vd_crnn/params")


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    """The folder the README's commands ran in, and what they printed, by section."""
    folder = tmp_path_factory.mktemp("readme")
    for name in SCRIPTS:
        shutil.copy(ROOT / name, folder)
    shutil.copytree(SAMPLES, folder / "samples")
    write_2020_rec_tarball(folder / "ch_rec_r34_vd_crnn_infer.tar")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = in_own_network(["sh", README_SCRIPT], cwd=folder, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    sections: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("== "):
            current = sections.setdefault(line[3:], [])
        elif line.split(" ", 1)[0] in LABELS and sections:
            current.append(line)
    return folder, sections



def answers(lines: list[str]) -> dict[str, dict]:
    """``ocr_web_client.py``'s lines (``file JSON``) by file name."""
    return {name: json.loads(doc) for name, doc in (ln.split(" ", 1) for ln in lines)}


@pytest.mark.slow
def test_every_command_runs_and_every_service_answers(readme):
    _, sections = readme
    assert list(sections) == [*SECTIONS, "done"]
    for section in SECTIONS:
        assert set(answers(sections[section])) == set(LABELS), section
    for mode in ("standard", "fast"):
        got = {name: doc["result"]["res"] for name, doc in answers(sections[mode]).items()}
        assert got == LABELS, mode
    for script in ("det_web_server.py", "det_local_server.py"):
        assert all(doc["result"]["dt_boxes"] for doc in answers(sections[script]).values())
    for script in ("rec_web_server.py", "rec_local_server.py"):
        assert answers(sections[script])["sign_shop.jpg"]["result"]["res"]


@pytest.mark.slow
def test_the_tarballs_hold_the_folders_get_model_wrote(readme):
    folder, _ = readme
    for name in ("ocr_det", "ocr_rec"):
        with tarfile.open(folder / f"{name}.tar.gz") as tar:
            members = {m.name for m in tar.getmembers()}
        on_disk = {p.relative_to(folder).as_posix()
                   for d in (f"{name}_model", f"{name}_client")
                   for p in [folder / d, *(folder / d).rglob("*")]}
        assert members == on_disk


@pytest.mark.slow
def test_the_converted_folders_serve_and_read(readme):
    """The README's positional call names its folders the other way round, as Paddle Serving
    took them (server first): the server files land in ``serving_client_dir``. That folder is
    served by ``paddle_serving_server.serve``, and ``Client`` loads the other one, with the feed
    and fetch names the call returned, and reads a line through them."""
    folder, _ = readme
    feeds, fetches = json.loads((folder / "converted.json").read_text())
    assert (feeds, fetches) == (["x"], ["softmax_11.tmp_0"])
    server_dir, client_dir = folder / "serving_client_dir", folder / "serving_server_dir"
    assert (server_dir / "inference.pdmodel").is_file()
    assert (server_dir / "serving_server_conf.prototxt").is_file()
    charset = load_dictionary(package.bundled_dictionary())  # the converted PP-OCRv4 model's
    [(_, batch)] = rec_batches([text_line("EXIT 42")], height=48, batch_size=6, min_width=320,
                               max_total_width=3200)
    port = free_port()
    with ServerProcess([sys.executable, "-m", "paddle_serving_server.serve", "--model",
                        server_dir, "--port", port, "--host", "127.0.0.1"],
                       "converted rec model server", cwd=folder):
        client = Client()
        client.load_client_config(str(client_dir / "serving_client_conf.prototxt"))
        client.connect([f"127.0.0.1:{port}"])
        try:
            out = client.predict(feed={feeds[0]: batch}, fetch=fetches, batch=True)
        finally:
            client.close()
    probs = np.asarray(out[fetches[0]])
    assert probs.shape[0] == 1 and probs.shape[-1] == len(charset) + 2
    [(text, score)] = ctc_decode(probs, charset)
    assert text == "EXIT 42" and score > 0.9
