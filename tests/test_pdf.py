"""PDF pages (pdfium): pages render at 144 dpi to 8-bit BGR images of their source's pixels, in
order; every file a server must refuse (too many pages, none, corrupt, encrypted, a page over the
pixel limit) is refused with its own message before any page is rendered; an abandoned document
is closed; and two requests' PDFs read at once do not mix, pdfium being serialized inside."""

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from pdserving.errors import BadRequest
from pdserving.pdf import PdfPages, is_pdf
from tests.helpers.images import encode, text_image
from tests.helpers.pdfs import blank_pdf, encrypted_pdf, no_pages_pdf, pdf_of

MAX_PAGES = 10
LIMIT = 40_000_000


def open_pdf(data: bytes, max_pages: int = MAX_PAGES, max_pixels: int = LIMIT) -> PdfPages:
    return PdfPages(data, max_pages, max_pixels)


def refusal(data: bytes, **limits) -> str:
    """The message of the BadRequest that opening ``data`` raises."""
    with pytest.raises(BadRequest) as refused:
        open_pdf(data, **limits)
    return refused.value.message


def differ(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two images of the same shape."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def hand_written_pdf(*objects: bytes) -> bytes:
    """A PDF of ``objects`` (numbered from 1, the first the catalog) with a correct xref table."""
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)


def test_pages_render_at_the_source_images_pixels():
    sources = [text_image("HELLO 123"), text_image("WIDE PAGE", 500, 90, at=(10, 60)),
               text_image("TALL", 120, 300, at=(5, 150))]
    pages = open_pdf(pdf_of(sources))
    assert len(pages) == 3
    assert pages.sizes == [(img.shape[1], img.shape[0]) for img in sources]
    for page, source in zip(pages, sources, strict=True):
        assert page.dtype == np.uint8 and page.shape == source.shape
        assert differ(page, source) < 3
        assert (page == 255).all(axis=2).mean() > 0.8  # black text on white: mostly white
        assert page.min() < 50  # and the text is there


def test_pages_are_bgr():
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(out, "PDF", resolution=144)
    [page] = open_pdf(out.getvalue())
    b, g, r = (int(v) for v in page[15, 20])
    assert r > 240 and g < 15 and b < 15


def test_pages_come_in_order():
    sources = [text_image(f"PAGE {i}" + " X" * i) for i in range(5)]
    for i, page in enumerate(open_pdf(pdf_of(sources))):
        nearest = min(range(len(sources)), key=lambda j: differ(page, sources[j]))
        assert nearest == i


def test_more_pages_than_the_cap_are_refused_naming_the_count():
    message = refusal(blank_pdf(*[(100, 100)] * 4), max_pages=3)
    assert message == "PDF has 4 pages; at most 3 per request (--max_pdf_pages)"
    assert len(open_pdf(blank_pdf(*[(100, 100)] * 3), max_pages=3)) == 3  # the cap itself is fine


def test_a_pdf_of_no_pages_is_refused():
    assert refusal(no_pages_pdf()) == "PDF has no pages"


def test_each_refusal_names_its_own_file_whatever_came_before():
    """pdfium's last error outlives a file: a no-pages file after a corrupt or an encrypted one
    is still refused for having no pages, and each of those for its own fault after it."""
    corrupt, encrypted = b"%PDF-1.4\njunk", encrypted_pdf(pdf_of([text_image("SECRET")]))
    for before in (corrupt, encrypted, no_pages_pdf()):
        refusal(before)
        assert refusal(no_pages_pdf()) == "PDF has no pages"
        assert refusal(corrupt) == "PDF is corrupt or not a PDF file"
        assert "encrypted" in refusal(encrypted)


def test_a_truncated_pdf_is_corrupt():
    data = pdf_of([text_image("CUT SHORT")])
    assert refusal(data[:len(data) // 2]) == "PDF is corrupt or not a PDF file"


def test_random_bytes_after_a_pdf_header_are_corrupt():
    junk = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    assert refusal(b"%PDF-1.7\n" + junk) == "PDF is corrupt or not a PDF file"


def test_a_password_protected_pdf_is_refused():
    message = refusal(encrypted_pdf(pdf_of([text_image("SECRET")])))
    assert "encrypted" in message and "password" in message


def test_an_encrypted_pdf_without_a_user_password_opens():
    source = text_image("OPEN")
    [page] = open_pdf(encrypted_pdf(pdf_of([source]), password=""))
    assert differ(page, source) < 3


def test_a_page_tree_that_counts_a_missing_page_is_corrupt():
    data = hand_written_pdf(b"<< /Type /Catalog /Pages 2 0 R >>",
                            b"<< /Type /Pages /Kids [3 0 R 9 0 R] /Count 2 >>",
                            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] >>")
    assert "corrupt" in refusal(data)


def test_a_page_over_the_pixel_limit_is_refused_from_its_size():
    start = time.monotonic()
    message = refusal(blank_pdf((100, 100), (20000, 20000)))  # at construction: nothing rendered
    assert time.monotonic() - start < 1  # rendering 40000x40000 pixels would take far longer
    assert message == ("PDF page 2 is 40000x40000 = 1600000000 pixels at 144 dpi, over the limit "
                       f"of {LIMIT} (--max_image_pixels)")


def test_a_page_of_exactly_the_pixel_limit_is_allowed():
    data = blank_pdf((100, 50))  # 200 x 100 pixels at 144 dpi
    assert open_pdf(data, max_pixels=20_000).sizes == [(200, 100)]
    assert "20000 pixels" in refusal(data, max_pixels=19_999)


def test_a_pdf_abandoned_after_its_first_page_is_closed():
    sources = [text_image(f"PAGE {i}") for i in range(3)]
    pages = open_pdf(pdf_of(sources))
    first = next(iter(pages))  # the second page is being rendered ahead meanwhile
    assert differ(first, sources[0]) < 3
    pages.close()
    assert pages._doc is None
    pages.close()  # twice is harmless

    for page in (pages := open_pdf(pdf_of(sources))):
        break  # the generator is closed as the loop is left
    assert pages._doc is None

    assert differ(list(open_pdf(pdf_of(sources)))[2], sources[2]) < 3  # pdfium still works


def test_an_unread_pdf_can_be_closed():
    pages = open_pdf(blank_pdf((100, 100)))
    pages.close()
    assert pages._doc is None


def test_is_pdf():
    assert is_pdf(pdf_of([text_image()]))
    assert is_pdf(b"junk before the header\n%PDF-1.4\n")
    assert not is_pdf(encode(text_image(), ".png"))
    assert not is_pdf(b"")
    assert not is_pdf(b"\0" * 2000 + b"%PDF-1.4\n")  # a header this late is not one


def test_two_pdfs_read_at_once_each_get_their_own_pages():
    books = [[text_image(f"BOOK {b} PAGE {i}", 400, 80) for i in range(6)] for b in "AB"]
    files = [pdf_of(book) for book in books]
    both_open = threading.Barrier(2, timeout=10)

    def read(k: int) -> list[np.ndarray]:
        pages = open_pdf(files[k])
        both_open.wait()
        out = []
        for page in pages:
            out.append(page)
            time.sleep(0.005)  # the other thread's pages render meanwhile
        return out

    with ThreadPoolExecutor(2) as pool:
        read_back = [f.result(timeout=20) for f in [pool.submit(read, k) for k in (0, 1)]]
    for book, pages in zip(books, read_back, strict=True):
        assert len(pages) == len(book)
        for page, source in zip(pages, book, strict=True):
            assert differ(page, source) < 3
