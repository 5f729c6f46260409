"""Property-based: whatever body reaches ``/ocr/prediction``, the answer is never a 500 and the
service keeps serving. Bodies range from random bytes to almost-valid requests with damaged
images."""

import base64
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdserving.services import local_handler
from pdserving.web.app import WebSettings, create_app
from tests.helpers.images import encode, text_image
from tests.helpers.servers import body, predict_url, serve

PNG = encode(text_image("AB 12", 120))
JPEG = encode(text_image("AB 12", 120), ".jpg")
FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def damaged_images(draw) -> bytes:
    """A real PNG or JPEG, cut short or with bytes overwritten somewhere."""
    data = bytearray(draw(st.sampled_from([PNG, JPEG])))
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, len(data)))])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


image_fields = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    damaged_images().map(lambda b: base64.b64encode(b).decode()),
    st.just(base64.b64encode(PNG).decode()),
    json_values,
)
items = st.one_of(st.fixed_dictionaries({"image": image_fields}), json_values)
fetches = st.one_of(st.lists(st.sampled_from(["res", "dt_boxes", "rec_scores", "boxes", ""]),
                             max_size=4), st.sampled_from(["res", "nope"]), json_values)
requests = st.one_of(
    json_values,
    st.fixed_dictionaries({"feed": st.lists(items, max_size=3), "fetch": fetches}),
    st.fixed_dictionaries({}, optional={"feed": st.lists(items, max_size=2) | json_values,
                                        "fetch": fetches}),
)


@pytest.fixture(scope="module")
def ocr(model_root):
    app = create_app(local_handler("ocr", model_root), WebSettings(max_images=2))
    with serve(app) as base:
        yield base
        assert httpx.get(base + "/health").status_code == 200
        r = httpx.post(predict_url(base), json=body(), timeout=30)
        assert r.status_code == 200 and "HELLO" in "".join(r.json()["result"]["res"])


def check(base: str, content: bytes) -> None:
    r = httpx.post(predict_url(base), content=content, timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 413), r.text
    doc = r.json()
    assert ("result" in doc) and (r.status_code == 200 or doc["err_msg"] == doc["result"])


@FUZZ
@given(doc=requests)
def test_generated_json_bodies_never_get_a_500(ocr, doc):
    check(ocr, json.dumps(doc).encode())


@FUZZ
@given(content=st.binary(max_size=512))
def test_generated_byte_bodies_never_get_a_500(ocr, content):
    check(ocr, content)
