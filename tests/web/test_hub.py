"""PaddleHub Serving's protocol (PaddleOCR ``deploy/hubserving``) on the kit's services: a client
that does what PaddleOCR's ``tools/test_hubserving.py`` does reads the samples with the lines of
``/ocr/prediction``; the det and rec modules; each bad request gets an error in PaddleHub's
envelope with a proper status, and the service keeps serving."""

from __future__ import annotations

import json

import httpx
import pytest

from pdserving.services import local_handler
from pdserving.web.app import create_app
from tests.helpers.images import b64, encode, text_image, text_line
from tests.helpers.requests import SETTINGS
from tests.helpers.servers import serve

HEADERS = {"Content-type": "application/json"}  # what test_hubserving.py sends


@pytest.fixture(scope="module")
def ocr(model_root):
    handler = local_handler("ocr", model_root)
    try:
        with serve(create_app(handler, SETTINGS)) as base:
            yield base
    finally:
        handler.close()


def hub_post(url: str, images: list[bytes]) -> httpx.Response:
    """As test_hubserving.py posts: one JSON body of base64 files, with its header."""
    return httpx.post(url, headers=HEADERS, timeout=60,
                      content=json.dumps({"images": [b64(i) for i in images]}))


def test_the_hubserving_client_reads_the_samples_as_ocr_prediction_does(ocr, samples):
    for name, (data, _) in samples.items():
        answer = hub_post(ocr + "/predict/ocr_system", [data]).json()
        assert (answer["status"], answer["msg"]) == ("000", ""), name
        res = answer["results"][0]
        own = httpx.post(ocr + "/ocr/prediction", timeout=60, json={
            "feed": [{"image": b64(data)}], "fetch": ["res", "dt_boxes"]}).json()["result"]
        assert [d["text"] for d in res] == own["res"], name
        assert [d["text_region"] for d in res] == own["dt_boxes"], name
        assert all(isinstance(d["confidence"], float) and 0 <= d["confidence"] <= 1
                   for d in res)


def test_several_images_get_a_result_each_in_order(ocr):
    answer = hub_post(ocr + "/predict/ocr_system", [
        encode(text_image("BRAVE768")), encode(text_image("", 64, 64)),
        encode(text_image("CHART259"))]).json()
    assert [[d["text"] for d in res] for res in answer["results"]] == [
        ["BRAVE768"], [], ["CHART259"]]


def test_ocr_det_gives_text_regions_only(ocr):
    answer = hub_post(ocr + "/predict/ocr_det", [encode(text_image("BRAVE768"))]).json()
    [[region]] = answer["results"]
    assert list(region) == ["text_region"] and len(region["text_region"]) == 4


def test_ocr_rec_reads_each_image_as_one_line_in_one_list(ocr):
    answer = hub_post(ocr + "/predict/ocr_rec", [encode(text_line("BRAVE768")),
                                                 encode(text_line("CHART259"))]).json()
    assert answer["status"] == "000"
    [lines] = answer["results"]
    assert [d["text"] for d in lines] == ["BRAVE768", "CHART259"]
    assert list(lines[0]) == ["text", "confidence"]


@pytest.mark.parametrize("kind, modules", [("det", ["ocr_det"]), ("rec", ["ocr_rec"])])
def test_det_and_rec_services_answer_their_module_only(model_root, kind, modules):
    handler = local_handler(kind, model_root)
    try:
        with serve(create_app(handler, SETTINGS)) as base:
            for module in ("ocr_system", "ocr_det", "ocr_rec"):
                r = hub_post(f"{base}/predict/{module}", [encode(text_line("BRAVE768"))])
                assert r.status_code == (200 if module in modules else 404), module
            assert httpx.post(base + "/ocr", json={"file": "x"}).status_code == 404
    finally:
        handler.close()


BAD = [
    (b"{nope", 400, "body is not valid JSON"),
    (b"[]", 400, 'body must be {"images": ["<base64>", ...]}'),
    (b"{}", 400, 'body must be {"images": ["<base64>", ...]}'),
    (b'{"images": []}', 400, "images: List should have at least 1 item"),
    (b'{"images": "abc"}', 400, "images: Input should be a valid array"),
    (b'{"images": [], "paths": ["/etc/passwd"]}', 400, "images: List should have at least"),
    (json.dumps({"images": [b64(encode(text_image()))], "paths": ["/etc/passwd"]}).encode(),
     400, "paths (files on the server) are not read"),
    (json.dumps({"images": ["!!"]}).encode(), 400, "images[0]: not valid base64"),
    (json.dumps({"images": [b64(b"GIF89a junk")]}).encode(), 400,
     "images[0]: not an image of a supported format"),
    (json.dumps({"images": [b64(encode(text_image()))] * 5}).encode(), 413,
     "images has 5 entries; at most 4 per request"),
    (b"x" * (SETTINGS.max_body_bytes + 1), 413, "body is"),
]


@pytest.mark.parametrize("content, status, message", BAD, ids=[m[:30] for *_, m in BAD])
def test_bad_requests_get_the_envelope_with_a_proper_status(ocr, content, status, message):
    r = httpx.post(ocr + "/predict/ocr_system", headers=HEADERS, content=content, timeout=30)
    assert r.status_code == status, r.text
    answer = r.json()
    assert (answer["status"], answer["results"]) == ("101", "")
    assert answer["msg"].startswith(message), answer
    good = hub_post(ocr + "/predict/ocr_system", [encode(text_image("BRAVE768"))]).json()
    assert good["status"] == "000"


def test_an_unknown_module_is_a_404(ocr):
    r = hub_post(ocr + "/predict/ocr_table", [encode(text_image())])
    assert r.status_code == 404
