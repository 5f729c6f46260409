"""The page ``GET /`` serves, in Chromium, against real services and models: choose, drop or
paste an image (or a PDF, on the OCR service: one card per page), see its boxes over it and its
lines with their scores.

Every test ends with ``log.assert_clean()``: no console error (but the ones a test provokes on
purpose) and no request to any host but 127.0.0.1 (the page is self-contained).
"""

from __future__ import annotations

import base64
import contextlib
from typing import Iterator

import cv2
import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page

from tests.helpers.browser import VIEWPORT, Log, browser_page, chromium
from tests.helpers.images import encode, text_image, text_line
from tests.helpers.pdfs import pdf_of
from tests.helpers.paths import SAMPLES
from tests.helpers.servers import Service, script, started

pytestmark = pytest.mark.browser

WAIT_MS = 60_000  # for one answer (the first request of a service warms its models up)

# Chromium logs this console error for any fetch answered 4xx/5xx, even when the page handles
# the answer (here: shows its err_msg). Tests that send a bad file on purpose expect it.
STATUS_400 = "the server responded with a status of 400"
STATUS_422 = "the server responded with a status of 422"  # POST /ocr's status for bad input
STATUS_401 = "the server responded with a status of 401"  # no API key
API_KEY = "page-key-5e1f02"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(params=["fast_ocr", "standard_ocr"])
def ocr(request) -> Service:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def det_only(model_root) -> Iterator[Service]:
    with started(script("det_local_server.py", "cpu", "--model_root", str(model_root))) as s:
        yield s


@pytest.fixture(scope="module")
def rec_only(model_root) -> Iterator[Service]:
    with started(script("rec_local_server.py", "cpu", "--model_root", str(model_root))) as s:
        yield s


@contextlib.contextmanager
def opened(browser: Browser, service: Service) -> Iterator[tuple[Page, Log]]:
    with browser_page(service.base + "/", browser=browser) as (page, log):
        yield page, log


def result(page: Page, n: int | str, state: str = "done") -> Locator:
    """Card ``n`` (1 = the first file given to the page; "1-2" = page 2 of that PDF) once
    answered, in ``state``."""
    card = page.locator(f"#result-{n}")
    page.locator(f"#result-{n}:is([data-state=done], [data-state=error])").wait_for(
        timeout=WAIT_MS)
    assert card.get_attribute("data-state") == state, card.inner_text()
    return card


def failed(page: Page, n: int, message: str) -> Locator:
    """Card ``n`` in the error state: ``message`` as its alert, "Failed", no image."""
    card = result(page, n, "error")
    assert card.locator("[role=alert]").inner_text() == message
    assert card.locator(".summary").inner_text() == "Failed"
    assert card.locator("img").is_hidden()
    return card


def lines(card: Locator) -> list[str]:
    return card.locator("ol.lines > li .text").all_inner_texts()


def geometry(card: Locator) -> dict:
    """Where the image and each drawn box are on screen (CSS pixels)."""
    return card.evaluate("""card => {
        const rect = (e) => { const r = e.getBoundingClientRect();
                              return [r.left, r.top, r.right, r.bottom]; };
        const img = card.querySelector("img");
        return {img: rect(img), natural: [img.naturalWidth, img.naturalHeight],
                boxes: [...card.querySelectorAll("svg polygon.box")].map(rect),
                labels: card.querySelectorAll(".label").length};
    }""")


def give(page: Page, kind: str, name: str, mime: str, data: bytes) -> None:
    """Drop (``kind`` "drop") or paste ("paste") a file ``name`` of type ``mime`` on the page."""
    page.evaluate("""([kind, name, mime, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type: mime}));
        if (kind === "paste") {
            document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true}));
        } else {
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        }
    }""", [kind, name, mime, base64.b64encode(data).decode()])


def covers(shown: dict, boxes: list) -> None:
    """Each drawn box covers its text: the service's box (image pixels), scaled to the
    displayed size and moved to where the image is on screen."""
    left, top, right, _ = shown["img"]
    scale = (right - left) / shown["natural"][0]
    assert len(shown["boxes"]) == shown["labels"] == len(boxes)
    for drawn, box in zip(shown["boxes"], boxes):
        xs, ys = [p[0] for p in box], [p[1] for p in box]
        want = [left + min(xs) * scale, top + min(ys) * scale,
                left + max(xs) * scale, top + max(ys) * scale]
        assert max(abs(a - b) for a, b in zip(drawn, want)) <= 2, (drawn, want)


def dt_boxes(service: Service, data: bytes) -> list:
    r = service.post([data], ["dt_boxes"])
    assert r.status_code == 200, r.text
    return r.json()["result"]["dt_boxes"]


@pytest.mark.parametrize("name", ["doc_mixed.png"])
def test_lines_and_boxes_drawn_where_the_text_is(browser, ocr, samples, name):
    data, expected = samples[name]
    with opened(browser, ocr) as (page, log):
        page.set_input_files("#file", SAMPLES / name)
        card = result(page, 1)
        assert lines(card) == expected
        scores = card.locator("ol.lines > li .score").all_inner_texts()
        assert len(scores) == len(expected) and all(0.5 < float(s) <= 1 for s in scores)
        assert card.locator(".summary").inner_text() == f"{len(expected)} lines"
        assert card.locator(".time").inner_text().endswith(" ms")
        shown = geometry(card)
        assert len(shown["boxes"]) == len(expected)
        covers(shown, dt_boxes(ocr, data))
        log.assert_clean()


def test_a_non_image_shows_the_service_message_and_the_page_goes_on(browser, ocr, samples):
    junk = b"shopping list: milk, bread\n"
    r = httpx.post(ocr.url, json={"feed": [{"image": base64.b64encode(junk).decode()}],
                                  "fetch": ["res"]}, timeout=30)
    assert r.status_code == 400
    message = r.json()["err_msg"]
    with opened(browser, ocr) as (page, log):
        page.set_input_files("#file", {"name": "notes.txt", "mimeType": "text/plain",
                                       "buffer": junk})
        card = failed(page, 1, message)
        assert card.locator(".error").inner_text() == message
        # Named and typed as an image: the browser cannot show it either (no broken image).
        page.set_input_files("#file", {"name": "photo.png", "mimeType": "image/png",
                                       "buffer": junk})
        card = failed(page, 2, message)
        assert card.locator(".error").inner_text() == message
        page.set_input_files("#file", SAMPLES / "sign_exit.jpg")
        assert lines(result(page, 3)) == samples["sign_exit.jpg"][1]
        log.assert_clean(expected=(STATUS_400,))


def test_several_images_then_a_large_one(browser, ocr, samples, tmp_path):
    names = ["sign_shop.jpg", "price_tag.jpg"]
    big = cv2.imread(str(SAMPLES / "doc_english.png"))
    big = cv2.resize(big, (3000, round(big.shape[0] * 3000 / big.shape[1])))
    (tmp_path / "large.jpg").write_bytes(encode(big, ".jpg"))
    with opened(browser, ocr) as (page, log):
        page.set_input_files("#file", [SAMPLES / n for n in names])  # both at once
        for n, name in enumerate(names, 1):
            card = result(page, n)
            assert card.get_attribute("data-file") == name
            assert lines(card) == samples[name][1]
        page.set_input_files("#file", tmp_path / "large.jpg")
        card = result(page, 3)
        assert lines(card) == samples["doc_english.png"][1]
        shown = geometry(card)
        assert shown["natural"][0] == 3000
        assert shown["img"][2] - shown["img"][0] <= VIEWPORT["width"]
        assert len(shown["boxes"]) == len(samples["doc_english.png"][1])
        # Newest on top.
        ids = page.locator(".result").evaluate_all("cards => cards.map(c => c.id)")
        assert ids == ["result-3", "result-1", "result-2"]
        log.assert_clean()


def test_dropped_and_pasted_images(browser, fast_ocr, samples):
    data, expected = samples["sign_street.jpg"]
    with opened(browser, fast_ocr) as (page, log):
        for n, kind in enumerate(["drop", "paste"], 1):
            give(page, kind, "street.jpg", "image/jpeg", data)
            assert lines(result(page, n)) == expected, kind
        log.assert_clean()


def test_a_dropped_pdf_gets_a_card_per_page(browser, fast_ocr):
    # Drawn with OpenCV's font at text_image's size, the model reads no space between the words.
    pages = {"HELLO 123": "HELLO123", "WORLD 456": "WORLD456"}
    data = pdf_of([text_image(t) for t in pages])
    with opened(browser, fast_ocr) as (page, log):
        with page.expect_response(fast_ocr.base + "/ocr") as response:
            give(page, "drop", "two.pdf", "application/pdf", data)
        answer = response.value.json()["result"]["ocrResults"]
        assert len(answer) == 2
        cards = [result(page, 1), result(page, "1-2")]
        ids = page.locator(".result").evaluate_all("cards => cards.map(c => c.id)")
        assert ids == ["result-1", "result-1-2"]  # in page order
        for n, (card, text, read) in enumerate(zip(cards, pages.values(), answer), 1):
            assert card.locator("h2").inner_text() == f"two.pdf, page {n} of 2"
            assert card.get_attribute("data-file") == "two.pdf"
            assert card.get_attribute("data-page") == str(n)
            assert lines(card) == [text]
            assert card.locator(".summary").inner_text() == "1 line"
            assert card.locator(".time").inner_text().endswith(" ms")
            img = card.locator("img")
            assert img.get_attribute("src").startswith("data:image/jpeg;base64,")
            shown = geometry(card)
            assert shown["natural"] == [360, 64]  # the page at 144 dpi: the image's pixels
            assert len(shown["boxes"]) == 1
            covers(shown, read["prunedResult"]["rec_polys"])
        assert [r for r in log.requests if r.startswith("POST")] == [
            f"POST {fast_ocr.base}/ocr"]
        log.assert_clean()


def test_a_corrupt_pdf_shows_the_service_message(browser, fast_ocr):
    junk = b"%PDF-1.7\nnot really a PDF\n"
    r = httpx.post(fast_ocr.base + "/ocr", json={"file": base64.b64encode(junk).decode(),
                                                 "fileType": 0}, timeout=30)
    assert r.status_code == 422
    message = r.json()["errorMsg"]
    with opened(browser, fast_ocr) as (page, log):
        page.set_input_files("#file", {"name": "bad.pdf", "mimeType": "application/pdf",
                                       "buffer": junk})
        card = failed(page, 1, message)
        assert card.locator("h2").inner_text() == "bad.pdf"
        assert page.locator(".result").count() == 1
        log.assert_clean(expected=(STATUS_422,))


@pytest.mark.parametrize("kind", ["det_only", "rec_only"])
def test_det_and_rec_pages_refuse_pdfs(browser, request, kind):
    service = request.getfixturevalue(kind)
    with opened(browser, service) as (page, log):
        assert page.locator("#file").get_attribute("accept") == "image/*"
        give(page, "drop", "two.pdf", "application/pdf", pdf_of([text_image()]))
        card = result(page, 1, "error")
        assert "PDFs are read by the OCR service" in card.locator(".error").inner_text()
        assert not [r for r in log.requests if r.startswith("POST")]
        log.assert_clean()


def test_an_answer_that_is_not_json_or_no_answer(browser, fast_ocr, samples):
    with opened(browser, fast_ocr) as (page, log):
        page.route(fast_ocr.url, lambda route: route.fulfill(
            status=502, content_type="text/html", body="<h1>Bad Gateway</h1>"))
        page.set_input_files("#file", SAMPLES / "sign_exit.jpg")
        error = result(page, 1, "error").locator(".error").inner_text()
        assert error.startswith("HTTP 502") and "not the service's JSON" in error
        page.unroute(fast_ocr.url)
        page.route(fast_ocr.url, lambda route: route.abort())
        page.set_input_files("#file", SAMPLES / "sign_exit.jpg")
        error = result(page, 2, "error").locator(".error").inner_text()
        assert error.startswith("Could not reach the service")
        page.unroute(fast_ocr.url)
        page.set_input_files("#file", SAMPLES / "sign_exit.jpg")
        assert lines(result(page, 3)) == samples["sign_exit.jpg"][1]
        log.assert_clean(expected=("status of 502", "net::ERR_FAILED"))


def test_det_only_page_draws_the_boxes(browser, det_only, samples):
    data, expected = samples["doc_english.png"]
    with opened(browser, det_only) as (page, log):
        page.set_input_files("#file", SAMPLES / "doc_english.png")
        card = result(page, 1)
        boxes = dt_boxes(det_only, data)
        assert len(boxes) == len(expected)
        assert len(geometry(card)["boxes"]) == len(boxes)
        assert card.locator("ol.lines > li").count() == 0
        assert card.locator(".summary").inner_text() == f"{len(boxes)} boxes"
        log.assert_clean()


def test_rec_only_page_shows_the_text(browser, rec_only):
    with opened(browser, rec_only) as (page, log):
        page.set_input_files("#file", {"name": "line.png", "mimeType": "image/png",
                                       "buffer": encode(text_line("Hello 2026"))})
        card = result(page, 1)
        assert lines(card) == ["Hello 2026"]
        assert 0.5 < float(card.locator(".score").inner_text()) <= 1
        assert card.locator("svg polygon").count() == 0
        log.assert_clean()


@pytest.fixture(scope="module")
def keyed_ocr(model_root) -> Iterator[Service]:
    with started(script("ocr_local_server.py", "cpu", "--model_root", str(model_root),
                        "--api_key", API_KEY)) as s:
        yield s


def test_the_key_field_is_sent_and_kept_for_the_tab(browser, keyed_ocr, samples):
    with opened(browser, keyed_ocr) as (page, log):
        page.set_input_files("#file", SAMPLES / "sign_exit.jpg")
        card = result(page, 1, "error")
        assert card.locator("[role=alert]").inner_text() == \
            "missing API key: send Authorization: Bearer <key>"
        page.fill("#key", API_KEY)
        page.set_input_files("#file", SAMPLES / "sign_exit.jpg")
        assert lines(result(page, 2)) == samples["sign_exit.jpg"][1]
        page.reload()  # the key stays with the tab (sessionStorage), nowhere in the page's URL
        assert page.input_value("#key") == API_KEY and API_KEY not in page.url
        give(page, "drop", "sign.jpg", "image/jpeg", samples["sign_exit.jpg"][0])
        assert lines(result(page, 1)) == samples["sign_exit.jpg"][1]
        log.assert_clean(expected=(STATUS_401,))
    with opened(browser, keyed_ocr) as (page, _):
        assert page.input_value("#key") == ""  # a new tab (context) starts without it


def test_no_key_field_on_a_service_without_keys(browser, fast_ocr):
    with opened(browser, fast_ocr) as (page, log):
        assert page.locator("#key").is_hidden()
        log.assert_clean()
