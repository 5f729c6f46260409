"""Scripts written in the 2020 form (``tests/compat/legacy``, ``examples/``) run on pdserving as
they are: on real models, with the ports they hard-code (9292, 9293) in a network namespace of
their own, importing ``paddle_serving_*`` from the project's venv with no PYTHONPATH."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from tests.helpers.netns import in_own_network
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.netns

LEGACY = Path(__file__).parent / "legacy"
DRIVER = Path(__file__).parent / "drive_legacy.py"
NOT_AN_IMAGE = base64.b64encode(b"these bytes are no image").decode()


def request(image: bytes | str, fetch=("res",)) -> str:
    b64 = image if isinstance(image, str) else base64.b64encode(image).decode()
    return json.dumps({"feed": [{"image": b64}], "fetch": list(fetch)})


def drive(tmp_path, argv: list, bodies: list[str], *, model_root, det_server=False,
          concurrency=1) -> list:
    """Start the script (and the det model server) in a fresh network namespace, send
    ``bodies`` to 127.0.0.1:9292 there, return [status, JSON] per body."""
    config, answers = tmp_path / "config.json", tmp_path / "answers.json"
    config.write_text(json.dumps({"argv": [str(a) for a in argv], "bodies": bodies,
                                  "det_server": det_server, "concurrency": concurrency}))
    done = in_own_network([sys.executable, DRIVER, config, answers], cwd=model_root,
                          timeout=300)
    out = json.loads(answers.read_text()) if answers.exists() else {}
    assert "error" not in out and done.returncode == 0, (done.stderr, out)
    return out["answers"]


def texts(service, samples) -> dict[str, list[str]]:
    """Our service's lines for every sample."""
    return {name: service.post([data]).json()["result"]["res"]
            for name, (data, _) in samples.items()}


def boxes(answer: dict) -> list:
    """Boxes in a comparable form: whole pixels, in (top-left y, x) order."""
    rounded = [[[round(x), round(y)] for x, y in box] for box in answer["dt_boxes"]]
    return sorted(rounded, key=lambda b: (b[0][1], b[0][0]))


@pytest.mark.slow
@pytest.mark.parametrize("script, with_det", [("ocr_web_server.py", True),
                                              ("ocr_local_server.py", False)])
def test_2020_ocr_scripts_read_every_sample_as_ours(tmp_path, model_root, samples, standard_ocr,
                                                    script, with_det):
    """The standard form (det through Client on ``paddle_serving_server.serve`` at 9293, rec
    behind run_rpc_service) and the fast form (Debugger + run_debugger_service). Bytes that are
    no image make the script's own code fail (cv2.imdecode gives None): a 500 JSON error, and
    the next request is served."""
    bodies = [request(data) for data, _ in samples.values()]
    bodies += [request(NOT_AN_IMAGE), bodies[0]]
    answers = drive(tmp_path, [LEGACY / script, "cpu"], bodies, model_root=model_root,
                    det_server=with_det)
    ours = texts(standard_ocr, samples)
    for (name, (_, lines)), (status, doc) in zip(samples.items(), answers):
        assert status == 200, doc
        assert doc["result"]["res"] == ours[name] == lines, name
    status, doc = answers[-2]
    assert status == 500 and doc["err_no"] == 500
    assert doc["err_msg"].startswith("OCRService.preprocess failed: AttributeError")
    assert answers[-1] == answers[0]


@pytest.mark.slow
@pytest.mark.parametrize("script", ["det_web_server.py", "det_local_server.py"])
def test_2020_det_scripts_give_our_boxes_under_concurrent_requests(tmp_path, model_root, samples,
                                                                   fast_ocr, script):
    """The det forms keep a request's sizes on ``self`` between preprocess and postprocess;
    requests on different images, 4 at a time, each still get their own image's boxes."""
    names = list(samples) * 2
    bodies = [request(samples[n][0]) for n in names]
    answers = drive(tmp_path, [LEGACY / script, "cpu"], bodies, model_root=model_root,
                    concurrency=4)
    ours = {n: boxes(fast_ocr.post([samples[n][0]], fetch=["dt_boxes"]).json()["result"])
            for n in samples}
    for name, (status, doc) in zip(names, answers):
        assert status == 200, doc
        assert boxes(doc["result"]) == ours[name], name


@pytest.mark.parametrize("argv", [
    [LEGACY / "ocr_web_server.py", "gpu"],
    [LEGACY / "ocr_local_server.py", "gpu"],
    [LEGACY / "det_local_server.py", "gpu"],
    [LEGACY / "rec_web_server.py", "cpu"],  # imports paddle_serving_server_gpu whatever it is told
    ["-m", "paddle_serving_server_gpu.serve", "--model", "ocr_det_model", "--gpu_ids", "0"],
], ids=["ocr_web_server", "ocr_local_server", "det_local_server", "rec_web_server", "serve"])
def test_gpu_forms_on_a_cpu_build_end_with_one_line(model_root, argv):
    done = in_own_network([sys.executable, *argv], cwd=model_root, timeout=120)
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: GPU requested"), done.stderr


def test_the_2020_package_command_writes_the_model_folders(tmp_path):
    done = in_own_network([sys.executable, "-m", "paddle_serving_app.package", "--get_model",
                           "ocr_det"], cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ocr_det_model" / "inference.onnx").is_file()  # the default family
    conf = (tmp_path / "ocr_det_client" / "serving_client_conf.prototxt").read_text()
    assert 'alias_name: "concat_1.tmp_0"' in conf


@pytest.mark.slow
def test_the_customised_example_drops_low_scores_and_adds_boxes(tmp_path, model_root, samples,
                                                                fast_ocr):
    """``examples/custom_ocr_web_server.py cpu 0.97``: the lines our service reads with a score
    of at least 0.97, with their scores and boxes. A body that is no image reaches a reader op,
    which refuses it (400, naming the op); the next request is served."""
    min_score, margin = 0.97, 0.003  # lines this close to the cut may fall either side
    bodies = [request(data) for data, _ in samples.values()] + [request(NOT_AN_IMAGE)]
    bodies.append(bodies[0])
    answers = drive(tmp_path, [ROOT / "examples" / "custom_ocr_web_server.py", "cpu",
                               str(min_score)], bodies, model_root=model_root)
    dropped = 0
    for (name, (data, _)), (status, doc) in zip(samples.items(), answers):
        assert status == 200, doc
        got = doc["result"]
        ours = fast_ocr.post([data], fetch=["res", "rec_scores", "dt_boxes"]).json()["result"]
        assert all(s >= min_score for s in got["rec_scores"]), name
        sure = [t for t, s in zip(ours["res"], ours["rec_scores"]) if s >= min_score + margin]
        maybe = [t for t, s in zip(ours["res"], ours["rec_scores"]) if s >= min_score - margin]
        assert set(sure) <= set(got["res"]) <= set(maybe), name
        mine = dict(zip(ours["res"], ours["dt_boxes"]))
        assert all(mine[t] == b for t, b in zip(got["res"], got["dt_boxes"])), name
        dropped += len(ours["res"]) - len(got["res"])
    assert dropped > 0  # the cut really dropped lines
    status, doc = answers[-2]
    assert status == 400 and doc["err_msg"].startswith("ResizeByFactor: expected an image")
    assert answers[-1] == answers[0]
