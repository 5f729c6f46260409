"""The web services' test limits, good and bad prediction requests, and the checks of their
answers, shared by every front that speaks the kit's protocol (``tests/web/test_app.py``, the
OpenAPI tests, the Ray ingress).

- ``SETTINGS``: the limits the tests' services run with (``LIMIT``: its body limit); the
  messages of ``BAD_INPUTS`` name them.
- ``GOOD``: a request the OCR models read (``HELLO 123``); ``feed(...)``: a request for base64
  strings as they are.
- ``BAD_INPUTS``: ``(id, (method, httpx keyword arguments), status, start of the message)``;
  ``each_bad_input`` parametrizes a test with them (``req, status, message``).
- ``assert_error``, ``assert_good_request_succeeds``, ``assert_bad_input_refused``: the JSON
  error body and status, and that the service still answers afterwards.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from pdserving.web.app import WebSettings
from tests.helpers.images import b64, encode, png_claiming, text_image
from tests.helpers.servers import body, predict_url

SETTINGS = WebSettings(max_body_bytes=256 * 1024, max_image_pixels=4_000_000, max_images=4)
LIMIT = SETTINGS.max_body_bytes
GOOD = body()
GOOD_IMAGE = GOOD["feed"][0]["image"]
JPEG = encode(text_image(), ".jpg")


def feed(*images: str, fetch=("res",)) -> dict:
    """A prediction request for ``images``, base64 strings (or anything else) sent as given."""
    return {"feed": [{"image": i} for i in images], "fetch": list(fetch)}


# id, request (method, httpx keyword arguments), status, start of the message. Each is sent by
# several modules (the Ray ingress too): bodies are re-iterable (a list is sent chunked).
BAD_INPUTS = [
    ("not-json", ("POST", {"content": b"{feed: nope"}), 400, "body is not valid JSON"),
    ("not-utf8", ("POST", {"content": b"\xff\xfe{}"}), 400, "body is not valid JSON"),
    ("deep-nesting", ("POST", {"content": b"[" * 100_000}), 400, "body is not valid JSON"),
    ("not-an-object", ("POST", {"json": [GOOD]}), 400, "body must be a JSON object"),
    ("no-feed", ("POST", {"json": {"fetch": ["res"]}}), 400, "missing 'feed'"),
    ("no-fetch", ("POST", {"json": {"feed": GOOD["feed"]}}), 400, "missing 'fetch'"),
    ("feed-not-list", ("POST", {"json": {"feed": {"image": GOOD_IMAGE}, "fetch": ["res"]}}),
     400, "feed must be a non-empty list"),
    ("feed-empty", ("POST", {"json": {"feed": [], "fetch": ["res"]}}), 400,
     "feed must be a non-empty list"),
    ("item-without-image", ("POST", {"json": {"feed": [{"img": GOOD_IMAGE}], "fetch": []}}),
     400, 'feed[0] must be an object with an "image" key'),
    ("item-not-object", ("POST", {"json": {"feed": [GOOD_IMAGE], "fetch": []}}), 400,
     'feed[0] must be an object with an "image" key'),
    ("image-not-string", ("POST", {"json": feed(GOOD_IMAGE, 42)}), 400,
     "feed[1].image must be a base64 string"),
    ("invalid-base64", ("POST", {"json": feed("%%not base64%%")}), 400,
     "feed[0].image: not valid base64"),
    ("not-an-image", ("POST", {"json": feed(b64(b"just some text, not pixels"))}), 400,
     "feed[0].image: not an image of a supported format"),
    ("truncated-jpeg", ("POST", {"json": feed(b64(JPEG[: len(JPEG) * 2 // 3]))}), 400,
     "feed[0].image: JPEG image data is corrupt or truncated"),
    ("1x1-image", ("POST", {"json": feed(b64(encode(np.zeros((1, 1, 3), np.uint8))))}), 400,
     "feed[0].image: image is 1x1; each side must be at least 4 pixels"),
    ("pixel-bomb", ("POST", {"json": feed(b64(png_claiming(20000, 20000)))}), 413,
     "feed[0].image: image is 20000x20000 = 400000000 pixels, over the limit of 4000000"),
    ("too-many-images", ("POST", {"json": feed(*[GOOD_IMAGE] * 5)}), 413,
     "feed has 5 images; at most 4 per request"),
    ("body-too-large", ("POST", {"content": b" " * (LIMIT + 1)}), 413,
     f"body is {LIMIT + 1} bytes, over the limit of {LIMIT}"),
    ("chunked-body-too-large", ("POST", {"content": [b" " * 65536] * 5}), 413,
     f"body is over the limit of {LIMIT} bytes"),
    ("unknown-fetch", ("POST", {"json": feed(GOOD_IMAGE, fetch=["res", "boxes"])}), 400,
     "unknown fetch name 'boxes'; this service offers res, dt_boxes, rec_scores"),
    ("fetch-not-strings", ("POST", {"json": feed(GOOD_IMAGE, fetch=[1])}), 400,
     "fetch must be a string or a list of strings"),
    ("wrong-method", ("GET", {}), 405, "Method Not Allowed: GET /ocr/prediction"),
]

# Every bad input as a test case: ``@each_bad_input`` gives a test ``req, status, message``.
each_bad_input = pytest.mark.parametrize(
    "req, status, message", [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])


def assert_error(r: httpx.Response, status: int, message: str) -> None:
    """``r`` is the kit's JSON error: ``status``, and a message starting with ``message``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["err_msg"].startswith(message), doc
    assert doc == {"result": doc["err_msg"], "err_no": status, "err_msg": doc["err_msg"]}


def assert_good_request_succeeds(base: str) -> None:
    """The OCR service at ``base`` reads ``GOOD``."""
    r = httpx.post(predict_url(base), json=GOOD, timeout=30)
    assert r.status_code == 200, r.text
    assert "HELLO" in "".join(r.json()["result"]["res"])


def assert_bad_input_refused(base: str, req: tuple, status: int, message: str) -> None:
    """``req`` gets its error from the service at ``base``, which then still answers."""
    method, kwargs = req
    r = httpx.request(method, predict_url(base), timeout=30, **kwargs)
    assert_error(r, status, message)
    assert_good_request_succeeds(base)
