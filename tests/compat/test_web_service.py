"""``WebService`` and ``Debugger`` in this process, on the real det model: the hooks' contract,
every error path of the 2020 front, and one request at a time through a service's hooks."""

from __future__ import annotations

import base64
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np
import pytest

from paddle_serving_app.local_predict import Debugger
from paddle_serving_app.reader import Div, Normalize, ResizeByFactor, Sequential, Transpose
from paddle_serving_client import Client
from paddle_serving_server.web_service import WebService
from pdserving.net import free_port
from pdserving.web.app import WebSettings
from tests.helpers.images import b64, encode, text_image
from tests.helpers.servers import serve

DET_FETCH = "concat_1.tmp_0"  # the 2020 name of the det output (a config alias)


@pytest.fixture(scope="module")
def debugger(model_root):
    det = Debugger()
    det.load_model_config(model_root / "ocr_det_model")
    yield det
    det.close()


class DetService(WebService):
    """A det service in the 2020 way; ``fail_with`` makes preprocess raise, for the tests."""

    fail_with: Exception | None = None

    def init(self, det_client):
        self.det_client = det_client
        self.prep = Sequential([ResizeByFactor(32, 960), Div(255),
                                Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                                Transpose((2, 0, 1))])

    def preprocess(self, feed=[], fetch=[]):
        if self.fail_with is not None:
            raise self.fail_with
        raw = base64.b64decode(feed[0]["image"])
        im = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        det_img = self.prep(im)
        self.det_client.predict(feed={"image": det_img}, fetch=[DET_FETCH])  # as 2020 det did
        return {"image": det_img}, [DET_FETCH, "sigmoid_0.tmp_0"]

    def postprocess(self, feed=[], fetch=[], fetch_map=None):
        return {name: fetch_map[name].shape for name in fetch} | {"score": np.float32(0.5)}


def service(model_root, debugger, cls=DetService, **settings) -> WebService:
    svc = cls(name="ocr")
    svc.load_model_config(model_root / "ocr_det_model")
    svc.prepare_server(workdir="workdir", port=free_port())
    svc.settings = WebSettings(**settings)
    svc.client = debugger  # what run_debugger_service sets, without loading the model again
    if isinstance(svc, DetService):
        svc.init(debugger)
    return svc


def post(base: str, body, path="/ocr/prediction") -> httpx.Response:
    if isinstance(body, dict):
        return httpx.post(base + path, json=body, timeout=30)
    return httpx.post(base + path, content=body, timeout=30)


def request(image: bytes) -> dict:
    return {"feed": [{"image": b64(image)}], "fetch": ["res"]}


def test_hooks_around_the_model_answer_plain_json(model_root, debugger):
    with serve(service(model_root, debugger).app()) as base:
        r = post(base, request(encode(text_image())))
        assert r.status_code == 200, r.text
        # text_image is 360x64 -> the det input 320x64 (docs/design.md §3.1)
        # -> maps of (1, 1, 64, 320)
        assert r.json() == {"result": {DET_FETCH: [1, 1, 64, 320],
                                       "sigmoid_0.tmp_0": [1, 1, 64, 320], "score": 0.5}}
        assert httpx.get(base + "/health").json() == {"status": "alive"}
        assert httpx.get(base + "/ready").json() == {"status": "ready"}
        assert 'pdserving_http_requests_total{route="/ocr/prediction",service="ocr",status="200"}' \
            in httpx.get(base + "/metrics").text


def test_the_default_hooks_run_the_feed_as_sent_and_return_every_output(model_root, debugger):
    svc = service(model_root, debugger, cls=WebService)
    feed = np.zeros((3, 32, 64), np.float32).tolist()  # one sample: the batch axis is added
    with serve(svc.app()) as base:
        r = post(base, {"feed": [{"image": feed}], "fetch": [DET_FETCH]})
        assert r.status_code == 200, r.text
        assert np.asarray(r.json()["result"][DET_FETCH]).shape == (1, 1, 32, 64)


def test_the_route_is_named_after_the_service(model_root, debugger):
    svc = service(model_root, debugger)
    svc.name = "det"
    with serve(svc.app()) as base:
        assert post(base, request(encode(text_image())), "/det/prediction").status_code == 200
        r = post(base, request(encode(text_image())))
        assert r.status_code == 404 and r.json()["err_no"] == 404


def error_cases(model_root, debugger, dead_port):
    """(what, service change, body, status, message start) for the 2020 front's error paths."""
    dead = Client()
    dead.load_client_config(model_root / "ocr_det_client")
    dead.connect([f"127.0.0.1:{dead_port}"])
    return [
        ("not JSON", None, b"{oops", 400, "body is not valid JSON"),
        ("no fetch", None, b'{"feed": []}', 400, "missing 'fetch'"),
        ("not an image", None, request(b"no image"), 400, "ResizeByFactor: expected an image"),
        ("hook raises", ("fail_with", KeyError("image")), request(encode(text_image())), 500,
         "DetService.preprocess failed: KeyError: 'image'"),
        ("det server down", ("det_client", dead), request(encode(text_image())), 503,
         f"model server 127.0.0.1:{dead_port} unavailable"),
        ("bad model call", ("det_client", _WrongFetch(debugger)), request(encode(text_image())),
         500, "DetService.preprocess failed: ValueError: Fetch names should not be empty"),
    ]


class _WrongFetch:
    """A det client asked for an output the model does not have."""

    def __init__(self, debugger):
        self.debugger = debugger

    def predict(self, feed, fetch):
        return self.debugger.predict(feed=feed, fetch=["no_such_output"])


def test_every_error_is_json_with_its_status_and_the_next_request_is_served(
        model_root, debugger, caplog):
    good = request(encode(text_image()))
    for what, change, body, status, message in error_cases(model_root, debugger, free_port()):
        svc = service(model_root, debugger)
        with serve(svc.app()) as base:
            if change:
                setattr(svc, *change)
            r = post(base, body)
            assert r.status_code == status, (what, r.text)
            doc = r.json()
            assert doc["err_no"] == status and doc["err_msg"].startswith(message), (what, doc)
            if status == 503:
                assert r.headers["Retry-After"] == "1"
            if change:
                setattr(svc, change[0], getattr(DetService, change[0], debugger))
            assert post(base, good).status_code == 200, what
    assert "DetService.preprocess failed" in caplog.text  # user code's traceback is logged


def test_body_limits_hold_in_front_of_the_hooks(model_root, debugger):
    with serve(service(model_root, debugger, max_body_bytes=1000).app()) as base:
        r = post(base, request(encode(text_image())))
        assert r.status_code == 413 and r.json()["err_no"] == 413


class StatefulService(WebService):
    """Keeps the request's value on self between the hooks, as the 2020 det scripts did."""

    def preprocess(self, feed=[], fetch=[]):
        self.value = feed[0]["value"]
        time.sleep(0.02)  # let another request in, if anything lets it
        return {"image": np.zeros((1, 3, 32, 32), np.float32)}, [DET_FETCH]

    def postprocess(self, feed=[], fetch=[], fetch_map=None):
        return {"value": self.value}


def test_hooks_of_one_service_see_one_request_at_a_time(model_root, debugger):
    """PaddleOCR #8578: state on self mixed concurrent requests up; here each gets its own."""
    svc = service(model_root, debugger, cls=StatefulService, max_in_flight=4)
    with serve(svc.app()) as base, ThreadPoolExecutor(4) as pool:
        bodies = [{"feed": [{"value": i}], "fetch": [DET_FETCH]} for i in range(16)]
        answers = list(pool.map(lambda b: post(base, b).json()["result"]["value"], bodies))
    assert answers == list(range(16))


def test_set_up_mistakes_end_the_script_with_one_line(tmp_path):
    svc = WebService(name="ocr")
    with pytest.raises(SystemExit, match=r"^error: .*no_such_model: no such model folder"):
        svc.load_model_config(tmp_path / "no_such_model")
    with pytest.raises(SystemExit, match=r"^error: call load_model_config"):
        svc.run_debugger_service()
    with pytest.raises(SystemExit, match=r"^error: call run_rpc_service\(\) or "):
        svc.run_web_service()


def test_the_rpc_service_runs_the_model_on_a_model_server(model_root, caplog):
    svc = DetService(name="ocr")
    svc.load_model_config(model_root / "ocr_det_model")
    svc.prepare_server(workdir="workdir", port=free_port())
    svc.run_rpc_service()
    try:
        assert isinstance(svc.client, Client)
        svc.init(svc.client)
        with serve(svc.app()) as base:
            r = post(base, request(encode(text_image())))
            assert r.status_code == 200, r.text
            assert httpx.get(base + "/ready").json() == {"status": "ready"}
            svc._model_server.kill()
            r = httpx.get(base + "/ready")
            assert r.status_code == 503 and "unreachable" in r.json()["err_msg"]
    finally:
        svc.close()


class TestDebugger:
    def test_names_aliases_and_batch_axis(self, debugger):
        x = np.random.default_rng(0).random((3, 64, 96), dtype=np.float32)
        by_alias = debugger.predict(feed={"image": x[None]}, fetch=[DET_FETCH])
        by_name = debugger.predict(feed={"x": x}, fetch="sigmoid_0.tmp_0")  # axis added
        pair = debugger.predict(feed=[{"image": x}, {"image": x}],
                                fetch=[DET_FETCH, "sigmoid_0.tmp_0"])
        assert list(pair) == [DET_FETCH, "sigmoid_0.tmp_0"]
        np.testing.assert_array_equal(by_alias[DET_FETCH], by_name["sigmoid_0.tmp_0"])
        assert pair[DET_FETCH].shape == (2, 1, 64, 96)
        np.testing.assert_allclose(pair[DET_FETCH][1:], by_alias[DET_FETCH], atol=1e-5)

    @pytest.mark.parametrize("feed, fetch, message", [
        (None, [DET_FETCH], "You should specify feed and fetch for prediction"),
        ({"image": 0}, [], "Fetch names should not be empty or out of saved fetch list."),
        ({"image": 0}, ["res"], "Fetch names should not be empty or out of saved fetch list."),
        ({"img": 0}, [DET_FETCH], "Wrong feed name: img."),
    ])
    def test_paddle_servings_messages(self, debugger, feed, fetch, message):
        with pytest.raises(ValueError, match=f"^{message}$".replace(".", r"\.")):
            debugger.predict(feed=feed, fetch=fetch)

    def test_predict_before_load(self):
        with pytest.raises(RuntimeError, match="load_model_config"):
            Debugger().predict(feed={"image": 0}, fetch=[DET_FETCH])

    def test_gpu_on_a_cpu_build_is_one_line(self, model_root):
        with pytest.raises(SystemExit, match=r"^error: GPU requested but this Paddle build"):
            Debugger().load_model_config(model_root / "ocr_det_model", gpu=True)


def test_log_of_a_failing_hook_has_its_traceback(model_root, debugger, caplog):
    svc = service(model_root, debugger)
    svc.fail_with = RuntimeError("boom")
    with caplog.at_level(logging.ERROR, "pdserving.compat.web_service"):
        with serve(svc.app()) as base:
            assert post(base, request(encode(text_image()))).status_code == 500
    assert "RuntimeError: boom" in caplog.text and "Traceback" in caplog.text
