"""Decoding of the base64 images clients send: untrusted bytes in, an 8-bit BGR array out.

Pillow decodes rather than ``cv2.imdecode`` because it reports what OpenCV hides: the size is
read from the header before any pixel is decoded (so a decompression bomb is refused cheaply),
and a truncated file raises instead of coming back half grey.
"""

from __future__ import annotations

import base64
import binascii
import io
import re

import cv2
import numpy as np
from PIL import Image, ImageOps

from pdserving.errors import BadRequest, PayloadTooLarge

MIN_SIDE = 4  # pixels; smaller images hold no readable text
# The formats OpenCV decoded for the original service, minus the exotic ones. An allowlist also
# keeps Pillow away from formats that call external programs (EPS runs Ghostscript).
FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM")
_PLUGINS = FORMATS + ("MPO",)  # Pillow's name for the multi-picture JPEGs phones write
_DATA_URL = re.compile(r"data:image/[\w.+-]+;base64,", re.IGNORECASE)

# Our own limit (``max_pixels``) is checked right after the header is read; Pillow's global one
# (a warning at 89 MP, an error at 179 MP) would only get in its way.
Image.MAX_IMAGE_PIXELS = None


def decode_base64_image(s: str, max_pixels: int) -> np.ndarray:
    """The image in ``s`` (standard base64 of the file, data-URL prefix allowed) as HxWx3 BGR.

    Raises BadRequest for bad base64, bytes that are not an image of a supported format, a
    corrupt or truncated file, or an image under MIN_SIDE pixels a side; PayloadTooLarge when
    width * height > max_pixels.
    """
    return decode_image(b64decode(s), max_pixels)


def decode_base64_images(strings: list[str], max_pixels: int, place: str) -> list[np.ndarray]:
    """Each of ``strings`` decoded as ``decode_base64_image``; an error names the image by
    ``place``, e.g. ``"feed[{i}].image"``, with ``{i}`` its index."""
    images = []
    for i, s in enumerate(strings):
        try:
            images.append(decode_base64_image(s, max_pixels))
        except (BadRequest, PayloadTooLarge) as e:
            raise type(e)(f"{place.format(i=i)}: {e.message}") from None
    return images


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """The image file in ``data`` as HxWx3 BGR; errors as ``decode_base64_image``."""
    try:
        img = Image.open(io.BytesIO(data), formats=_PLUGINS)
    except Exception:  # any failure to parse untrusted bytes is the sender's problem
        raise BadRequest(f"not an image of a supported format ({', '.join(FORMATS)})") from None
    w, h = img.size
    if w * h > max_pixels:
        raise PayloadTooLarge(f"image is {w}x{h} = {w * h} pixels, over the limit of "
                              f"{max_pixels}")
    if min(w, h) < MIN_SIDE:
        raise BadRequest(f"image is {w}x{h}; each side must be at least {MIN_SIDE} pixels")
    try:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # as cv2.IMREAD_COLOR did
    except Exception:
        raise BadRequest(f"{img.format} image data is corrupt or truncated") from None
    return _to_bgr(img)


def b64decode(s: str) -> bytes:
    """Standard base64 (data-URL prefix, line breaks and missing padding tolerated) to bytes;
    BadRequest if it is not base64 or holds nothing."""
    m = _DATA_URL.match(s)
    if m:
        s = s[m.end():]
    s = "".join(s.split())  # line breaks of MIME-style encoders
    try:
        data = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("not valid base64") from None
    if not data:
        raise BadRequest("file is empty")
    return data


def _to_bgr(img: Image.Image) -> np.ndarray:
    """8-bit BGR: 16-bit grey keeps its high byte, transparency is laid on white (as PaddleOCR)."""
    if img.mode.startswith("I;16"):
        grey = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if img.has_transparency_data:
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
