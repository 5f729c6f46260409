"""The OCR services over HTTP, as users run them: fast and standard mode, det-only, rec-only."""

import signal
import subprocess
import sys

import cv2
import httpx
import numpy as np
import pytest

from pdserving.net import free_port
from tests.helpers.images import encode, text_line
from tests.helpers.paths import ROOT
from tests.helpers.servers import Service, script, started

pytestmark = pytest.mark.e2e


def test_openvino_reads_every_sample_line_as_paddle_does(fast_ocr, fast_ocr_paddle, samples):
    """The default engine changes nothing users see: the same lines (each sample read exactly
    as labelled, CER 0), boxes within 1 px, scores within 1e-3."""
    fetch = ["res", "dt_boxes", "rec_scores"]
    for name, (data, expected) in samples.items():
        ov = fast_ocr.post([data], fetch).json()["result"]
        pd = fast_ocr_paddle.post([data], fetch).json()["result"]
        assert ov["res"] == pd["res"] == expected, name
        assert np.abs(np.array(ov["dt_boxes"]) - np.array(pd["dt_boxes"])).max() <= 1, name
        np.testing.assert_allclose(ov["rec_scores"], pd["rec_scores"], atol=1e-3)


def test_metrics_name_the_engine_of_each_model(fast_ocr, fast_ocr_paddle, standard_ocr):
    def engines(service: Service) -> str:
        text = httpx.get(service.base + "/metrics", timeout=10).text
        return "\n".join(ln for ln in text.splitlines() if ln.startswith("pdserving_model_engine"))

    assert 'engine="openvino",model="det"} 1.0' in engines(fast_ocr)
    assert 'engine="openvino",model="rec"} 1.0' in engines(fast_ocr)
    assert 'engine="paddle",model="rec"} 1.0' in engines(fast_ocr_paddle)
    assert 'engine="openvino",model="rec"} 1.0' in engines(standard_ocr)  # its rec model server


def test_metrics_name_the_family_of_each_model(fast_ocr, standard_ocr):
    for service in (fast_ocr, standard_ocr):
        text = httpx.get(service.base + "/metrics", timeout=10).text
        for model in ("det", "rec"):
            assert (f'pdserving_model_family_info{{family="PP-OCRv4_mobile",model="{model}",'
                    f'model_name="PP-OCRv4_mobile_{model}"}} 1.0') in text


def test_standard_and_fast_give_identical_json(fast_ocr, standard_ocr, samples):
    """Both modes read every sample exactly as labelled, with the same boxes and scores."""
    fetch = ["res", "dt_boxes", "rec_scores"]
    for name, (data, expected) in samples.items():
        fast, standard = fast_ocr.post([data], fetch), standard_ocr.post([data], fetch)
        assert fast.status_code == standard.status_code == 200
        assert fast.json() == standard.json(), name
        assert fast.json()["result"]["res"] == expected, name


def test_fetch_selects_aligned_outputs(fast_ocr, samples):
    data, expected = samples["doc_english.png"]
    result = fast_ocr.post([data], ["dt_boxes", "res", "rec_scores"]).json()["result"]
    assert set(result) == {"res", "dt_boxes", "rec_scores"}
    assert len(result["res"]) == len(result["dt_boxes"]) == len(result["rec_scores"])
    assert all(0.5 < s <= 1 for s in result["rec_scores"])
    h, w = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    for box in result["dt_boxes"]:
        assert np.array(box).shape == (4, 2)
        assert all(0 <= x < w and 0 <= y < h for x, y in box)
    assert fast_ocr.post([data]).json() == {"result": {"res": result["res"]}}


def test_several_images_give_one_entry_each_in_feed_order(fast_ocr, samples):
    names = ["sign_exit.jpg", "receipt.png", "sign_shop.jpg"]
    r = fast_ocr.post([samples[n][0] for n in names], ["res", "rec_scores"])
    result = r.json()["result"]
    assert [len(x) for x in result["res"]] == [len(x) for x in result["rec_scores"]]
    singles = [fast_ocr.post([samples[n][0]]).json()["result"]["res"] for n in names]
    assert result["res"] == singles


def test_image_without_text_gives_empty_result(fast_ocr, standard_ocr):
    blank = encode(np.full((300, 400, 3), 255, np.uint8))
    for service in (fast_ocr, standard_ocr):
        assert service.post([blank]).json() == {"result": {"res": []}}


@pytest.fixture(scope="module", params=["det_local_server.py", "det_web_server.py"])
def det_service(request, model_root):
    extra = ["--model_port", str(free_port())] if "web" in request.param else []
    with started(script(request.param, "cpu", "--model_root", str(model_root), *extra)) as s:
        yield s


def test_det_service_returns_boxes_in_original_pixels(det_service, fast_ocr, samples):
    data, expected = samples["doc_english.png"]
    r = det_service.post([data], ["dt_boxes"])
    boxes = r.json()["result"]["dt_boxes"]
    assert len(boxes) == len(expected)
    assert boxes == fast_ocr.post([data], ["dt_boxes"]).json()["result"]["dt_boxes"]
    # Twice the size in, twice the coordinates out: the boxes are in the sent image's pixels.
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    big = det_service.post([encode(cv2.resize(img, None, fx=2, fy=2))]).json()["result"]
    assert len(big["dt_boxes"]) == len(boxes)
    assert np.abs(np.array(big["dt_boxes"]) / 2 - np.array(boxes)).max() < 12


@pytest.fixture(scope="module", params=["rec_local_server.py", "rec_web_server.py"])
def rec_service(request, model_root):
    extra = ["--model_port", str(free_port())] if "web" in request.param else []
    with started(script(request.param, "cpu", "--model_root", str(model_root), *extra)) as s:
        yield s


def test_rec_service_returns_one_string_per_line_image_in_order(rec_service):
    texts = ["Hello 2026", "pdserving", "Line three 42", "OK"]
    r = rec_service.post([encode(text_line(t)) for t in texts],
                         ["res", "rec_scores"])
    result = r.json()["result"]
    assert result["res"] == texts
    assert len(result["rec_scores"]) == len(texts)


def test_client_script_prints_the_text_of_every_sample(fast_ocr, samples):
    out = subprocess.run([sys.executable, str(ROOT / "ocr_web_client.py"), "--url", fast_ocr.url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name, (_, expected) in samples.items():
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith(name + " "))
        assert expected[0] in line


@pytest.mark.parametrize("name", ["ocr_local_server.py", "ocr_web_server.py"])
def test_gpu_on_a_cpu_build_is_a_one_line_error(name, model_root):
    out = subprocess.run([sys.executable, str(ROOT / name), "gpu", "--model_root",
                          str(model_root), "--port", str(free_port())],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "CUDA" in out.stderr and "requirements-gpu.txt" in out.stderr


@pytest.mark.parametrize("name,own", [
    ("ocr_local_server.py", "det"), ("ocr_web_server.py", "rec"), ("det_local_server.py", "det"),
    ("det_web_server.py", "det"), ("rec_local_server.py", "rec"), ("rec_web_server.py", "rec")])
def test_every_script_runs_on_paddle_when_asked(name, own, model_root, det_server, samples):
    extra = ["--det_endpoints", det_server.endpoint] if name == "ocr_web_server.py" else []
    if "web" in name:
        extra += ["--model_port", str(free_port())]
    proc = script(name, "cpu", "--engine", "paddle", "--instances", "1", "--model_root",
                  str(model_root), *extra)
    with started(proc) as service:
        metrics = httpx.get(service.base + "/metrics", timeout=10).text
        assert f'pdserving_model_engine_info{{engine="paddle",model="{own}"}} 1.0' in metrics
        data, expected = samples["sign_exit.jpg"]
        result = service.post([data], ["dt_boxes" if name.startswith("det") else "res"]).json()
        if name.startswith("ocr"):
            assert result["result"]["res"] == expected
        elif name.startswith("det"):
            assert len(result["result"]["dt_boxes"]) == len(expected)
        else:  # the whole sign as one line
            assert result["result"]["res"][0]


@pytest.mark.parametrize("name", ["ocr_local_server.py", "ocr_web_server.py"])
def test_openvino_on_gpu_is_a_one_line_error(name, model_root):
    out = subprocess.run([sys.executable, str(ROOT / name), "gpu", "--engine", "openvino",
                          "--model_root", str(model_root), "--port", str(free_port())],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "openvino runs on the CPU only" in out.stderr and "--engine paddle" in out.stderr


def test_sigterm_stops_the_web_server_and_its_rec_model_server(model_root, det_server):
    import psutil

    proc = script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                  "--det_endpoints", det_server.endpoint,
                  "--model_port", str(free_port())).start(120)
    children = psutil.Process(proc.proc.pid).children(recursive=True)
    assert children, "the rec model server should run as a child"
    assert httpx.get(f"http://{proc.endpoint}/health", timeout=10).status_code == 200
    proc.proc.terminate()
    assert proc.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once stopped
    proc.stop()
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive


def test_killed_web_server_leaves_no_orphan_model_server(model_root, det_server):
    import psutil

    proc = script("rec_web_server.py", "cpu", "--model_root", str(model_root),
                  "--model_port", str(free_port())).start(120)
    children = psutil.Process(proc.proc.pid).children(recursive=True)
    assert children
    proc.kill()
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive


def test_use_cls_reads_upside_down_lines(model_root, fast_ocr, samples):
    """The 180-degree classifier (cls model, on OpenVINO by default) turns flipped crops back."""
    def upside_down(name: str) -> bytes:
        img = cv2.imdecode(np.frombuffer(samples[name][0], np.uint8), cv2.IMREAD_COLOR)
        return encode(cv2.rotate(img, cv2.ROTATE_180))

    proc = script("ocr_local_server.py", "cpu", "--use_cls", "--model_root", str(model_root))
    with started(proc) as service:
        metrics = httpx.get(service.base + "/metrics", timeout=10).text
        assert 'pdserving_model_engine_info{engine="openvino",model="cls"} 1.0' in metrics
        sign = service.post([upside_down("sign_exit.jpg")]).json()["result"]["res"]
        assert sign == samples["sign_exit.jpg"][1][::-1]  # lines in reverse order, each upright
        notice = service.post([upside_down("notice_english.jpg")]).json()["result"]["res"]
        assert {"NOTICE", "No parking in the fire lane"} <= set(notice)
    assert "EXIT" not in fast_ocr.post([upside_down("sign_exit.jpg")]).json()["result"]["res"]


def test_each_model_is_warmed_at_the_shapes_the_pipeline_sends(model_root):
    """cls's files say "any size", but the pipeline only sends it 48x192 crops."""
    from pdserving.engine.model_folder import ModelFolder
    from pdserving.pipeline import OcrOptions
    from pdserving.services import pipeline_warmup

    options = OcrOptions()
    shapes = {n: [f["x"].shape for f in pipeline_warmup(
        n, ModelFolder.read(model_root / f"ocr_{n}_model"), options)]
        for n in ("det", "rec", "cls")}
    assert shapes == {"det": [(1, 3, 640, 640), (1, 3, 960, 960)],
                      "rec": [(1, 3, 48, 320), (6, 3, 48, 320)],
                      "cls": [(1, 3, 48, 192), (6, 3, 48, 192)]}
