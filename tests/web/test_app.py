"""The web service against a real server on 127.0.0.1 with the real fast-mode OCR handler:
every bad input of issue 5 gets its status and message, and the next good request succeeds."""

import http.client
import json
import socket

import httpx
import pytest

from pdserving.errors import Unavailable
from pdserving.services import local_handler
from pdserving.web.app import create_app
from tests.helpers.images import encode, text_image
from tests.helpers.requests import (GOOD, LIMIT, SETTINGS, assert_bad_input_refused,
                                    assert_error, assert_good_request_succeeds, each_bad_input)
from tests.helpers.servers import body, predict_url, serve


@pytest.fixture(scope="module")
def ocr(model_root):
    with serve(create_app(local_handler("ocr", model_root), SETTINGS)) as base:
        yield base


@each_bad_input
def test_bad_input_gets_its_error_and_the_service_keeps_serving(ocr, req, status, message):
    assert_bad_input_refused(ocr, req, status, message)


def test_unknown_path_is_a_json_404(ocr):
    assert_error(httpx.post(ocr + "/predict", json=GOOD), 404, "Not Found: POST /predict")
    assert_good_request_succeeds(ocr)


def test_wrong_method_names_the_allowed_one(ocr):
    r = httpx.put(predict_url(ocr), json=GOOD)
    assert_error(r, 405, "Method Not Allowed: PUT")
    assert r.headers["allow"] == "POST"


def test_oversized_content_length_is_refused_before_the_body_is_sent(ocr):
    """A client announcing 1 GiB gets 413 at once; nothing of the body is read or waited for."""
    port = int(ocr.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /ocr/prediction HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: 1073741824\r\n\r\n")
        reply = http.client.HTTPResponse(s)
        reply.begin()
        assert reply.status == 413
        assert json.loads(reply.read())["err_msg"] == (f"body is 1073741824 bytes, over the "
                                                       f"limit of {LIMIT}")
    assert_good_request_succeeds(ocr)


def test_fetch_forms(ocr):
    """A string, an empty list (the default output) and repeats are accepted."""
    for fetch, keys in [("res", {"res"}), ([], {"res"}), (["rec_scores", "res", "res"],
                                                           {"rec_scores", "res"})]:
        r = httpx.post(predict_url(ocr), json={**GOOD, "fetch": fetch}, timeout=30)
        assert r.status_code == 200, r.text
        assert set(r.json()["result"]) == keys


def test_several_images_give_one_entry_per_image(ocr):
    images = [encode(text_image("HELLO 123")), encode(text_image("WORLD 456"), ".jpg")]
    r = httpx.post(predict_url(ocr), json=body(*images, fetch=["res", "dt_boxes"]), timeout=30)
    result = r.json()["result"]
    assert len(result["res"]) == len(result["dt_boxes"]) == 2
    assert "HELLO" in "".join(result["res"][0]) and "WORLD" in "".join(result["res"][1])


def test_health_ready_and_metrics(ocr):
    assert httpx.get(ocr + "/health").json() == {"status": "alive"}
    assert httpx.get(ocr + "/ready").json() == {"status": "ready"}
    httpx.post(predict_url(ocr), content=b"nope")
    assert_good_request_succeeds(ocr)
    r = httpx.get(ocr + "/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in ['pdserving_http_requests_total{route="/ocr/prediction",service="ocr",'
                 'status="400"}',
                 'pdserving_http_requests_total{route="/ocr/prediction",service="ocr",'
                 'status="200"}',
                 'pdserving_http_request_duration_seconds_bucket{le="0.5",'
                 'route="/ocr/prediction",service="ocr"}',
                 'pdserving_requests_in_flight{service="ocr"} 0.0',
                 'pdserving_requests_queued{service="ocr"} 0.0',
                 'pdserving_model_inference_seconds_count{model="det"}',
                 'pdserving_model_inference_seconds_count{model="rec"}']:
        assert line in text, line


class FakeHandler:
    """Fails the way a handler may: a model server down, a bug, not ready."""

    name = "fake"
    outputs = ("res",)
    result_type = dict

    def __init__(self, error: Exception | None = None, not_ready: str | None = None):
        self.error = error
        self.not_ready = not_ready

    def __call__(self, images, fetch):
        if self.error:
            raise self.error
        return {"res": [f"{img.shape[1]}x{img.shape[0]}" for img in images]}

    def ready(self):
        return self.not_ready


def test_handler_unavailable_is_a_503_with_retry_after():
    app = create_app(FakeHandler(Unavailable("det server 127.0.0.1:9 is down", 2.5)))
    with serve(app) as base:
        r = httpx.post(predict_url(base), json=GOOD)
    assert_error(r, 503, "det server 127.0.0.1:9 is down")
    assert r.headers["retry-after"] == "3"


def test_a_bug_is_a_generic_500_logged_with_its_traceback(capfd):
    app = create_app(FakeHandler(RuntimeError("secret internals")))
    with serve(app) as base:
        r = httpx.post(predict_url(base), json=GOOD)
        assert httpx.get(base + "/health").status_code == 200
    assert_error(r, 500, "internal server error")
    assert "secret" not in r.text
    log = capfd.readouterr().err
    assert "Traceback" in log and "RuntimeError: secret internals" in log


def test_not_ready_is_a_503_with_the_reason_while_health_stays_alive():
    with serve(create_app(FakeHandler(not_ready="det endpoint 127.0.0.1:9 unreachable"))) as base:
        r = httpx.get(base + "/ready")
        assert httpx.get(base + "/health").json() == {"status": "alive"}
    assert_error(r, 503, "not ready: det endpoint 127.0.0.1:9 unreachable")
    assert "retry-after" in r.headers
