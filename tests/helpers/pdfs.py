"""Test PDFs, made here: pages that are images of known text (144 dpi, so that a page renders
back at the image's own pixels), and the broken kinds a server must refuse."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pypdfium2 as pdfium
from PIL import Image
from pypdf import PdfWriter


def pdf_of(images: list[np.ndarray], dpi: float = 144) -> bytes:
    """A PDF with one page per BGR image, each page the image's size at ``dpi`` (lossless)."""
    pages = [Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)) for img in images]
    out = io.BytesIO()
    # Pillow writes RGB pages as JPEG; grey ("L") pages go in losslessly (Flate).
    pages = [p.convert("L") for p in pages]
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=dpi)
    return out.getvalue()


def blank_pdf(*sizes: tuple[float, float]) -> bytes:
    """Empty pages of the given (width, height) in points."""
    doc = pdfium.PdfDocument.new()
    for w, h in sizes:
        doc.new_page(w, h)
    out = io.BytesIO()
    doc.save(out)
    doc.close()
    return out.getvalue()


def no_pages_pdf() -> bytes:
    out = io.BytesIO()
    PdfWriter().write(out)
    return out.getvalue()


def encrypted_pdf(data: bytes, password: str = "secret") -> bytes:
    """``data`` protected by a user password (a reader needs it to open the file)."""
    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
