"""PDF pages as images, with pdfium (pypdfium2, as PaddleX): untrusted bytes in, 8-bit BGR pages
out, one at a time (docs/design.md §2.7).

Everything about the file is checked before any page is rendered: that it opens (not corrupt,
not password-protected), its page count against a cap, and each page's size at the render scale
against the pixel limit. pdfium is not thread-safe, so every call into it runs on one thread of
its own; a document's next page renders there while the caller works on the current one, so at
most two of its pages are in memory at a time, however many it has.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from pdserving.errors import BadRequest

SCALE = 2.0  # pixels per point: 144 dpi, PaddleX's rendering scale
_ON_PDFIUM = threading.local()  # .here on the pdfium thread
_PDFIUM = ThreadPoolExecutor(1, thread_name_prefix="pdfium",
                             initializer=lambda: setattr(_ON_PDFIUM, "here", True))


def is_pdf(data: bytes) -> bool:
    """Whether ``data`` starts as a PDF file does (the header may follow a little junk)."""
    return b"%PDF-" in data[:1024]


class PdfPages:
    """An open PDF whose pages all passed the checks; iterate for the rendered pages (once).
    ``sizes`` are their (width, height) in pixels."""

    def __init__(self, data: bytes, max_pages: int, max_pixels: int, scale: float = SCALE):
        self.scale = scale
        self._doc, self.sizes = _PDFIUM.submit(_open, data, max_pages, max_pixels, scale).result()

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            ahead: Future | None = _PDFIUM.submit(_render, self._doc, 0, self.scale)
            for i in range(len(self.sizes)):
                page = ahead.result()
                ahead = (_PDFIUM.submit(_render, self._doc, i + 1, self.scale)
                         if i + 1 < len(self.sizes) else None)
                yield page
        finally:
            self.close()

    def close(self) -> None:
        """Free the document (also when its pages were not all read)."""
        if self._doc is not None:
            doc, self._doc = self._doc, None
            closing = _PDFIUM.submit(doc.close)
            # Not on the pdfium thread (a garbage collection run there finalizing the generator
            # above): that thread would wait for itself, for ever; it closes the doc next.
            if not getattr(_ON_PDFIUM, "here", False):
                closing.result()


def _has_no_pages(data: bytes) -> bool:
    """Whether pdfium opens ``data`` but finds no page in it. pypdfium2 refuses such a file with
    pdfium's last error, which no successful open resets: after a corrupt or encrypted file it
    names that file's fault, so the error code cannot tell them apart; opening again can."""
    raw = pdfium_c.FPDF_LoadMemDocument64(data, len(data), None)
    if not raw:
        return False
    pdfium_c.FPDF_CloseDocument(raw)
    return True


def _open(data: bytes, max_pages: int, max_pixels: int, scale: float
          ) -> tuple[pdfium.PdfDocument, list[tuple[int, int]]]:
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if _has_no_pages(data):  # first: the error code of such a file is a previous file's
            raise BadRequest("PDF has no pages") from None
        if e.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise BadRequest("PDF is encrypted (password-protected); send it unprotected"
                             ) from None
        raise BadRequest("PDF is corrupt or not a PDF file") from None
    try:
        n = len(doc)  # at least 1: pypdfium2 refuses a file of none (above)
        if n > max_pages:
            raise BadRequest(f"PDF has {n} pages; at most {max_pages} per request "
                             "(--max_pdf_pages)")
        sizes = []
        for i in range(n):
            try:
                points = doc.get_page_size(i)
            except pdfium.PdfiumError:  # e.g. a page tree that counts pages it does not have
                raise BadRequest(f"PDF is corrupt: its page {i + 1} cannot be read") from None
            w, h = (max(1, math.ceil(side * scale)) for side in points)
            if w * h > max_pixels:
                raise BadRequest(f"PDF page {i + 1} is {w}x{h} = {w * h} pixels at "
                                 f"{72 * scale:g} dpi, over the limit of {max_pixels} "
                                 "(--max_image_pixels)")
            sizes.append((w, h))
    except BaseException:
        doc.close()
        raise
    return doc, sizes


def _render(doc: pdfium.PdfDocument, index: int, scale: float) -> np.ndarray:
    page = doc[index]
    try:
        bitmap = page.render(scale=scale, may_draw_forms=True)
        try:
            # pdfium draws BGR: OpenCV's order. A copy, as the bitmap's buffer is freed below.
            return np.array(bitmap.to_numpy()[:, :, :3])
        finally:
            bitmap.close()
    except pdfium.PdfiumError:
        raise BadRequest(f"PDF page {index + 1} cannot be rendered") from None
    finally:
        page.close()
