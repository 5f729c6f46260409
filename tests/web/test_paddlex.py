"""PaddleX's ``POST /ocr`` (PaddleOCR 3.x's serving protocol) on the kit's OCR services: answers of
the shape a real PaddleX 3.7.2 server gives (``tests/data``), PaddleOCR's documented client run
unchanged, the same lines as ``/ocr/prediction``, per-request settings, PDFs, URLs, and each
error as a 4xx/5xx in PaddleX's form after which the service keeps serving."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil
import pytest

from pdserving import cli
from pdserving.services import local_handler, remote_handler
from pdserving.web.app import WebSettings, create_app
from pdserving.net import free_port
from tests.helpers.images import b64, text_image
from tests.helpers.pdfs import blank_pdf, encrypted_pdf, no_pages_pdf, pdf_of
from tests.helpers.paths import ROOT
from tests.helpers.servers import serve

RECORDED = json.loads((Path(__file__).parents[1] / "data" / "paddlex_3.7.2_answers.json")
                      .read_text(encoding="utf-8"))["answers"]
SETTINGS = WebSettings(max_body_bytes=8 << 20, max_pdf_pages=5)
SAMPLE = ROOT / "samples" / "doc_mixed.png"  # the image PaddleX answered in tests/data
PAGES = ["BRAVE768", "CHART259", "DWARF347"]


@pytest.fixture(scope="module")
def handler(model_root):
    handler = local_handler("ocr", model_root)
    yield handler
    handler.close()


@pytest.fixture(scope="module")
def ocr(handler):
    with serve(create_app(handler, SETTINGS)) as base:
        yield base


def post(base: str, doc, **kwargs) -> httpx.Response:
    return httpx.post(base + "/ocr", json=doc, timeout=120, **kwargs)


def shape(value):
    """Keys in order and value types; a list holds the shapes of its items (as recorded)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        kinds = {json.dumps(shape(v), sort_keys=True) for v in value}
        return [json.loads(k) for k in sorted(kinds)]
    return {bool: "bool", int: "int", float: "float", str: "str", type(None): "null"}[type(value)]


def key_orders(answer: dict) -> dict:
    orders = {"answer": list(answer)}
    if "result" in answer:
        page = answer["result"]["ocrResults"][0]
        orders.update({"prunedResult": list(page["prunedResult"]), "ocrResults[0]": list(page),
                       "dataInfo": list(answer["result"]["dataInfo"])})
    return orders


def two_page_pdf() -> bytes:
    return pdf_of([text_image(PAGES[0]), text_image(PAGES[1])])


@pytest.mark.parametrize("case", list(RECORDED))
def test_answers_have_the_keys_and_types_paddlex_answers_with(ocr, case):
    recorded = RECORDED[case]
    request = dict(recorded["request"])
    if "file" in request:
        request["file"] = {"pdf of 2 pages": b64(two_page_pdf()),
                           "bad base64": "not base64!"}.get(case, b64(SAMPLE.read_bytes()))
    r = post(ocr, request)
    assert r.status_code == recorded["status"], r.text
    answer = r.json()
    assert shape(answer) == recorded["shape"]
    assert key_orders(answer) == recorded["keys"]
    if "logId" in request:
        assert answer["logId"] == request["logId"]


def test_paddleocrs_documented_python_client_runs_unchanged(ocr, tmp_path):
    """PaddleOCR 3.x's client example for the OCR service: post base64 with fileType 1, print
    each page's prunedResult, save its ocrImage as a JPEG."""
    client = f'''
import base64
import requests

API_URL = "{ocr}/ocr"
file_path = "{SAMPLE}"

with open(file_path, "rb") as file:
    file_bytes = file.read()
    file_data = base64.b64encode(file_bytes).decode("ascii")

payload = {{"file": file_data, "fileType": 1}}

response = requests.post(API_URL, json=payload)

assert response.status_code == 200
result = response.json()["result"]
for i, res in enumerate(result["ocrResults"]):
    print(res["prunedResult"])
    ocr_img_path = f"ocr_{{i}}.jpg"
    with open(ocr_img_path, "wb") as f:
        f.write(base64.b64decode(res["ocrImage"]))
    print(f"Output image saved at {{ocr_img_path}}")
'''
    run = subprocess.run([sys.executable, "-c", client], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Do not use near water" in run.stdout and "Output image saved at ocr_0.jpg" in run.stdout
    picture = cv2.imread(str(tmp_path / "ocr_0.jpg"))
    sample = cv2.imread(str(SAMPLE))
    assert picture.shape == (sample.shape[0], 2 * sample.shape[1], 3)  # image | texts


def test_lines_are_those_of_ocr_prediction_for_every_sample(ocr, samples):
    for name, (data, _) in samples.items():
        page = post(ocr, {"file": b64(data), "fileType": 1, "visualize": False}).json()
        pruned = page["result"]["ocrResults"][0]["prunedResult"]
        own = httpx.post(ocr + "/ocr/prediction", timeout=60, json={
            "feed": [{"image": b64(data)}], "fetch": ["res", "dt_boxes"]}).json()["result"]
        assert (pruned["rec_texts"], pruned["rec_polys"]) == (own["res"], own["dt_boxes"]), name
        assert pruned["rec_boxes"] == [[min(x for x, _ in p), min(y for _, y in p),
                                        max(x for x, _ in p), max(y for _, y in p)]
                                       for p in pruned["rec_polys"]]
        assert "ocrImage" not in page["result"]["ocrResults"][0]


def test_a_requests_settings_hold_for_that_request_only(ocr):
    image = b64(SAMPLE.read_bytes())
    default = post(ocr, {"file": image, "visualize": False}).json()["result"]
    strict = post(ocr, {"file": image, "visualize": False, "textRecScoreThresh": 0.999,
                        "textDetThresh": 0.25, "textDetBoxThresh": 0.55,
                        "textDetUnclipRatio": 1.8, "textDetLimitType": "min",
                        "textDetLimitSideLen": 736}).json()["result"]
    pruned = strict["ocrResults"][0]["prunedResult"]
    assert pruned["text_det_params"] == {"limit_side_len": 736, "limit_type": "min",
                                         "thresh": 0.25, "max_side_limit": 4000,
                                         "box_thresh": 0.55, "unclip_ratio": 1.8}
    assert pruned["text_rec_score_thresh"] == 0.999
    assert all(s >= 0.999 for s in pruned["rec_scores"])
    assert len(pruned["rec_texts"]) < len(pruned["dt_polys"])  # the threshold drops lines only
    assert len(pruned["textline_orientation_angles"]) == len(pruned["dt_polys"])
    again = post(ocr, {"file": image, "visualize": False}).json()["result"]
    assert again["ocrResults"][0]["prunedResult"] == default["ocrResults"][0]["prunedResult"]


def test_a_pdf_gives_a_result_per_page_with_its_text(ocr):
    data = pdf_of([text_image(text) for text in PAGES])
    result = post(ocr, {"file": b64(data), "fileType": 0}).json()["result"]
    assert result["dataInfo"] == {"numPages": 3, "type": "pdf", "pages": [
        {"width": 360, "height": 64}] * 3}
    assert [page["prunedResult"]["rec_texts"] for page in result["ocrResults"]] == [
        [text] for text in PAGES]
    for page in result["ocrResults"]:
        jpeg = np.frombuffer(base64.b64decode(page["inputImage"]), np.uint8)
        assert cv2.imdecode(jpeg, cv2.IMREAD_COLOR).shape == (64, 360, 3)


def test_the_file_type_is_told_from_the_bytes_when_not_given(ocr):
    pdf = post(ocr, {"file": b64(two_page_pdf()), "visualize": False}).json()["result"]
    assert pdf["dataInfo"]["type"] == "pdf" and len(pdf["ocrResults"]) == 2
    image = post(ocr, {"file": b64(SAMPLE.read_bytes()), "visualize": False}).json()["result"]
    assert image["dataInfo"] == {"width": 1640, "height": 726, "type": "image"}


BAD = [
    ({"file": b64(no_pages_pdf()), "fileType": 0}, "PDF has no pages"),
    ({"file": b64(two_page_pdf()[:400]), "fileType": 0}, "PDF is corrupt"),
    ({"file": b64(encrypted_pdf(blank_pdf((200, 100)))), "fileType": 0}, "PDF is encrypted"),
    ({"file": b64(blank_pdf((20000, 20000))), "fileType": 0}, "PDF page 1 is 40000x40000"),
    ({"file": b64(blank_pdf(*[(100, 100)] * 6)), "fileType": 0},
     "PDF has 6 pages; at most 5 per request (--max_pdf_pages)"),
    ({"file": b64(SAMPLE.read_bytes()), "fileType": 0}, "PDF is corrupt or not a PDF file"),
    ({"file": b64(two_page_pdf()), "fileType": 1}, "file is a PDF, and fileType says 1"),
    ({"file": b64(b"GIF89a nonsense"), "fileType": 1}, "not an image of a supported format"),
    ({"file": ""}, "file is empty"),
    ({"fileType": 1}, "file: Field required"),
    ({"file": "x", "fileType": 5}, "fileType: Input should be 0 or 1"),
    ({"file": "x", "textDetThresh": 1.5}, "textDetThresh: Input should be less than or equal"),
    ({"file": "x", "textDetLimitType": "foo"}, "textDetLimitType: Input should be 'min' or"),
    ({"file": "x", "textDetUnclipRatio": 0}, "textDetUnclipRatio: Input should be greater"),
    ({"file": "x", "useDocUnwarping": True}, "useDocUnwarping: this service has no document"),
    ({"file": "x", "useDocOrientationClassify": True}, "useDocOrientationClassify: this"),
    ({"file": "x", "returnWordBox": True}, "returnWordBox: word boxes are not offered"),
    ({"file": "x", "useTextlineOrientation": True}, "useTextlineOrientation: this service "
     "runs without the text line orientation model; start it with --use_cls"),
    ({"file": "http://127.0.0.1:1/a.png"}, "file is a URL, and this server fetches none"),
    ([1, 2], "body must be a JSON object"),
]


@pytest.mark.parametrize("doc, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_is_a_422_in_paddlexs_form_and_the_service_keeps_serving(ocr, doc, message):
    if isinstance(doc, dict):
        doc = {**doc, "logId": "request-7"}
    r = post(ocr, doc)
    assert r.status_code == 422, r.text
    answer = r.json()
    assert list(answer) == ["logId", "errorCode", "errorMsg"]
    assert answer["errorCode"] == 422 and answer["errorMsg"].startswith(message), answer
    assert answer["logId"] == ("request-7" if isinstance(doc, dict) else answer["logId"])
    good = post(ocr, {"file": b64(two_page_pdf()), "visualize": False})
    assert good.status_code == 200


def test_not_json_and_too_large_bodies(ocr):
    r = httpx.post(ocr + "/ocr", content=b"{nope", timeout=30)
    assert (r.status_code, r.json()["errorMsg"]) == (422, "body is not valid JSON")
    r = post(ocr, {"file": "A" * (SETTINGS.max_body_bytes + 1)})
    assert r.status_code == 413 and r.json()["errorCode"] == 413
    assert list(r.json()) == ["logId", "errorCode", "errorMsg"]


def test_the_scripts_flags_set_the_protocols_limits():
    def settings(*argv: str) -> WebSettings:
        return cli._settings(cli._parser("", standard=False).parse_args(["cpu", *argv]))

    assert (settings().max_pdf_pages, settings().visualize, settings().url_hosts) == (
        100, True, ())
    custom = settings("--max_pdf_pages", "7", "--no_visualize",
                      "--allow_url_hosts", "Files.example, 127.0.0.1")
    assert (custom.max_pdf_pages, custom.visualize, custom.url_hosts) == (
        7, False, ("files.example", "127.0.0.1"))


def test_a_dead_model_server_is_a_503_with_retry_after(model_root):
    dead = [f"127.0.0.1:{free_port()}"]
    handler = remote_handler("ocr", model_root, {"det": dead, "rec": dead})
    try:
        with serve(create_app(handler, SETTINGS)) as base:
            r = post(base, {"file": b64(SAMPLE.read_bytes()), "logId": "d1"})
    finally:
        handler.close()
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.json()["logId"] == "d1" and r.json()["errorCode"] == 503


class _Files(SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(ROOT / "samples"), **kwargs)

    def log_message(self, *args):
        pass


def test_a_url_from_an_allowed_host_is_read(handler):
    files = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{files.server_address[1]}/{SAMPLE.name}"
    try:
        with serve(create_app(handler, WebSettings(url_hosts=("127.0.0.1",)))) as base:
            r = post(base, {"file": url, "visualize": False})
            elsewhere = post(base, {"file": url.replace("127.0.0.1", "localhost")})
    finally:
        files.shutdown()
        files.server_close()
    assert "Do not use near water" in r.json()["result"]["ocrResults"][0]["prunedResult"][
        "rec_texts"]
    assert elsewhere.status_code == 422
    assert elsewhere.json()["errorMsg"].startswith("file URL host 'localhost' is not one")


def test_ocr_on_the_standard_service_gives_its_prediction(standard_ocr, samples):
    data, _ = next(iter(samples.values()))
    pruned = post(standard_ocr.base, {"file": b64(data), "visualize": False}).json()[
        "result"]["ocrResults"][0]["prunedResult"]
    own = standard_ocr.post([data], fetch=("res", "dt_boxes")).json()["result"]
    assert (pruned["rec_texts"], pruned["rec_polys"]) == (own["res"], own["dt_boxes"])


def test_a_pdf_past_the_timeout_stops_at_the_next_page(handler):
    """Its client gets the 503 at the timeout, and the one worker is free soon after: the
    rest of the pages are not read for nobody."""
    pages = [text_image(f"PAGE{i + 20}", 1190, 1684, scale=4, at=(100, 400), thickness=8)
             for i in range(24)]
    doc = {"file": b64(pdf_of(pages)), "fileType": 0, "visualize": False}
    settings = WebSettings(max_in_flight=1, request_timeout=1.0)
    with serve(create_app(handler, settings)) as base:
        started = time.monotonic()
        late = post(base, doc)
        assert late.status_code == 503 and late.json()["errorCode"] == 503
        good = post(base, {"file": b64(SAMPLE.read_bytes()), "visualize": False})
        waited = time.monotonic() - started
    assert good.status_code == 200
    # All 24 pages take over 5 s here (0.2-0.3 s each); the worker was free after about one.
    assert waited < 4, waited


def test_memory_stays_bounded_over_twenty_pdfs_of_twenty_pages(fast_ocr):
    """Pages are rendered one at a time: the service's peak RSS over 20 requests of 20 A4 pages
    (6 MB each as pixels) stays under 1.5x its RSS after a warm-up of one such request. (Det
    runs on a small copy of each page, as a request may ask, to keep the test quick.)"""
    def a4_page(text: str) -> np.ndarray:
        return text_image(text, 1190, 1684, scale=4, at=(100, 400), thickness=8)

    doc = {"file": b64(pdf_of([a4_page(f"PAGE{i + 20}") for i in range(20)])), "fileType": 0,
           "visualize": False, "textDetLimitType": "max", "textDetLimitSideLen": 320}
    process = psutil.Process(fast_ocr.proc.proc.pid)
    assert len(post(fast_ocr.base, doc).json()["result"]["ocrResults"]) == 20
    warm = process.memory_info().rss
    peak, done = warm, threading.Event()

    def watch():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(20):
            result = post(fast_ocr.base, doc).json()["result"]
            assert result["ocrResults"][7]["prunedResult"]["rec_texts"] == ["PAGE27"]
    finally:
        done.set()
        watcher.join()
    print(f"peak RSS {peak / 2**20:.0f} MiB, after warm-up {warm / 2**20:.0f} MiB")
    assert peak < 1.5 * warm, (peak / 2**20, warm / 2**20)
