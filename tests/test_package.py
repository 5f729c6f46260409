"""The bundled OCR models: folders, configs, dictionary, idempotence, ensure_model, CLI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pdserving import package
from pdserving.convert import inference_model_to_serving
from pdserving.engine.paddle_engine import PaddleEngine
from pdserving.launcher import model_server
from pdserving.net import free_port
from pdserving.modelconf import CLIENT_CONF, SERVER_CONF, GeneralModelConfig, load_config
from pdserving.ops.ctc import best_path
from pdserving.ops.resize import rec_batches
from pdserving.engine.model_folder import DICT_NAME, ModelFolder
from pdserving.services import build_handler, remote_handler
from tests.helpers.paths import ROOT, SAMPLES

# name -> (feed shape, [(fetch name, fetch alias, fetch shape)]), as paddle reports the PP-OCRv4 /
# v2 models (the rec model with the best path added in front of its softmax); the aliases are the
# names the 2020 scripts fetch (package.FETCH_ALIASES).
EXPECTED = {
    "ocr_det": ([3, -1, -1], [("sigmoid_0.tmp_0", "concat_1.tmp_0", [1, -1, -1])]),
    "ocr_rec": ([3, 48, -1], [(package.BEST_PATH, "ctc_greedy_decoder_0.tmp_0", [-1, 2]),
                              ("softmax_11.tmp_0", "softmax_0.tmp_0", [-1, 6625])]),
    "ocr_cls": ([3, -1, -1], [("softmax_0.tmp_0", "softmax_0.tmp_0", [2])]),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_configs_name_the_models_variables(model_root, name):
    feed_shape, fetches = EXPECTED[name]
    server, client = model_root / f"{name}_model", model_root / f"{name}_client"
    conf = load_config(server / SERVER_CONF)
    assert [(v.name, v.alias_name, v.feed_type, list(v.shape), v.is_lod_tensor)
            for v in conf.feed_var] == [("x", "image", 1, feed_shape, False)]
    assert [(v.name, v.alias_name, v.fetch_type, list(v.shape), v.is_lod_tensor)
            for v in conf.fetch_var] == [(n, a, 1, shape, False) for n, a, shape in fetches]
    assert load_config(client / CLIENT_CONF) == conf
    for folder, conf_name in ((server, SERVER_CONF), (client, CLIENT_CONF)):
        stream = GeneralModelConfig()
        stream.ParseFromString((folder / conf_name.replace(".prototxt", ".stream.prototxt"))
                               .read_bytes())
        assert stream == conf
    assert (server / "inference.pdmodel").is_file() and (server / "inference.pdiparams").is_file()


def test_dictionary_beside_rec_model_matches_class_count(model_root):
    lines = (model_root / "ocr_rec_model" / DICT_NAME).read_text("utf-8").splitlines()
    assert len(lines) == 6623
    classes = load_config(model_root / "ocr_rec_model").fetch_var[1].shape[-1]
    assert classes == len(lines) + 2  # CTC blank + appended space


def test_get_model_is_idempotent(model_root):
    server = model_root / "ocr_det_model"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in server.iterdir()}
    assert package.get_model("ocr_det", model_root, "PP-OCRv4_mobile") == server
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in server.iterdir()}
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}
    # The model files are not rewritten: a running server may be reading them.
    assert after["inference.pdiparams"][0] == before["inference.pdiparams"][0]


def test_get_model_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'ocr_foo'"):
        package.get_model("ocr_foo", tmp_path)


def test_ensure_model(model_root, tmp_path):
    assert package.ensure_model(model_root / "ocr_det_model") == model_root / "ocr_det_model"
    made = package.ensure_model(tmp_path / "ocr_cls_model")
    assert made == tmp_path / "ocr_cls_model"
    assert (made / SERVER_CONF).is_file() and (tmp_path / "ocr_cls_client" / CLIENT_CONF).is_file()
    with pytest.raises(FileNotFoundError) as err:
        package.ensure_model(tmp_path / "my_model")
    assert "my_model: no such model folder" in str(err.value) and "\n" not in str(err.value)


def test_list_model(capsys):
    assert package.main(["--list_model"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["ocr_det", "ocr_rec", "ocr_cls"]
    assert lines[3] == ("families (--family): PP-OCRv4_mobile, PP-OCRv6_tiny, PP-OCRv6_small; "
                        "default PP-OCRv6_small")
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # each with a description


@pytest.mark.e2e
def test_cli_get_model_writes_into_current_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pdserving.package", "--get_model", "ocr_rec"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    # The default family on the CPU install: PP-OCRv6 small, ONNX with its dictionary.
    assert (tmp_path / "ocr_rec_model" / "inference.onnx").is_file()
    assert (tmp_path / "ocr_rec_model" / "ppocrv6_dict.txt").is_file()
    assert (tmp_path / "ocr_rec_client" / CLIENT_CONF).is_file()


def snapshot(folder) -> dict:
    """Every path under ``folder``: its bytes (files), mode, owner and time to the nanosecond."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None,
                                               p.stat().st_mode, p.stat().st_uid,
                                               p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(package.MODELS))
def test_get_model_leaves_a_tarball_that_extracts_to_the_same_files(tmp_path, name):
    """The 2020 README's step 2: ``--get_model NAME`` then ``tar -xzvf NAME.tar.gz``. The tar
    exits 0, holds exactly the two folders, and changes no file. Run again, ``--get_model``
    rewrites neither the folders nor the tarball (``pdserving-package`` is the same command)."""
    command = [sys.executable, "-m", "pdserving.package"]
    if name == "ocr_cls":
        command = [str(Path(sys.executable).parent / "pdserving-package")]
    get = subprocess.run([*command, "--get_model", name], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert get.returncode == 0, get.stderr
    assert f"{name}.tar.gz" in get.stdout
    before = snapshot(tmp_path)
    listed = subprocess.run(["tar", "-xzvf", f"{name}.tar.gz"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert snapshot(tmp_path) == before
    folders = {p for p in before if not p.endswith(".tar.gz")}
    assert {line.rstrip("/") for line in listed.stdout.splitlines()} == folders
    assert {p.split("/")[0] for p in folders} == {f"{name}_model", f"{name}_client"}
    again = subprocess.run([*command, "--get_model", name], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert snapshot(tmp_path) == before


def test_write_archive_needs_both_folders(tmp_path):
    (tmp_path / "ocr_det_model").mkdir()
    with pytest.raises(FileNotFoundError, match="ocr_det_client: no such folder"):
        package.write_archive("ocr_det", tmp_path)
    assert not (tmp_path / "ocr_det.tar.gz").exists()


@pytest.fixture(scope="module")
def line_batch() -> np.ndarray:
    """A real sign as one rec input batch (the whole image as a line)."""
    sign = cv2.imread(str(SAMPLES / "sign_exit.jpg"))
    [(_, batch)] = rec_batches([sign], height=48, batch_size=6, min_width=320,
                               max_total_width=3200)
    return batch


def test_rec_best_path_is_the_softmax_best_class_and_probability(model_root, line_batch):
    out = PaddleEngine(model_root / "ocr_rec_model").run({"x": line_batch})
    np.testing.assert_array_equal(out[package.BEST_PATH], best_path(out["softmax_11.tmp_0"]))
    assert out[package.BEST_PATH][0, :, 0].any()  # the sign has text: not all blanks


def test_a_softmax_only_rec_model_reads_the_same(model_root, tmp_path, line_batch):
    """A rec model converted as it is (softmax only) decodes on the host to the same text."""
    plain = tmp_path / "ocr_rec_model"
    inference_model_to_serving(package.source_folder("ocr_rec"), plain,
                               tmp_path / "ocr_rec_client")
    shutil.copy(model_root / "ocr_rec_model" / DICT_NAME, plain)
    assert ModelFolder.read(plain).best_path_classes is None
    assert ModelFolder.read(model_root / "ocr_rec_model").best_path_classes == 6625
    sign = cv2.imread(str(SAMPLES / "sign_exit.jpg"))
    texts = {}
    for folder in (plain, model_root / "ocr_rec_model"):
        handler = build_handler("rec", {"rec": PaddleEngine(folder)},
                                {"rec": ModelFolder.read(folder)})
        texts[folder] = handler([sign], ["res", "rec_scores"])
    assert texts[plain] == texts[model_root / "ocr_rec_model"]
    assert texts[plain]["res"][0]


@pytest.mark.e2e
def test_a_rec_client_folder_older_than_its_model_still_reads(model_root, tmp_path):
    """Standard mode with an old client config (softmax fetch) and a new model folder."""
    root = tmp_path / "models"
    shutil.copytree(model_root / "ocr_rec_model", root / "ocr_rec_model")
    shutil.copytree(model_root / "ocr_rec_client", root / "ocr_rec_client")
    conf = root / "ocr_rec_client" / CLIENT_CONF
    old = load_config(conf)
    del old.fetch_var[0]  # as written before the best path existed: the softmax only
    conf.write_text(str(old))
    sign = cv2.imread(str(SAMPLES / "sign_exit.jpg"))
    with model_server(root / "ocr_rec_model", free_port()) as server:
        handler = remote_handler("rec", root, {"rec": [server.endpoint]})
        stale = handler([sign], ["res", "rec_scores"])
    rec = ModelFolder.read(model_root / "ocr_rec_model")
    local = build_handler("rec", {"rec": PaddleEngine(rec)}, {"rec": rec})(
        [sign], ["res", "rec_scores"])
    assert stale == local and stale["res"][0]
