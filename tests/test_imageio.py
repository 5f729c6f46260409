"""Decoding of client images: every format and pixel layout to 8-bit BGR, every bad input refused
with its own message, and oversized images refused from their header alone."""

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from pdserving.errors import BadRequest, PayloadTooLarge
from pdserving.imageio import decode_base64_image
from tests.helpers.images import b64, encode, png_claiming

LIMIT = 40_000_000
RNG = np.random.default_rng(0)
BGR = RNG.integers(0, 256, (40, 60, 3), dtype=np.uint8)


def pil_encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def decode(data: bytes, max_pixels: int = LIMIT) -> np.ndarray:
    return decode_base64_image(b64(data), max_pixels)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tiff", ".webp", ".ppm"])
def test_lossless_formats_decode_to_the_same_bgr_pixels(ext):
    out = decode(encode(BGR, ext))
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, BGR)


def test_jpeg_and_gif_decode_to_bgr_of_the_right_size():
    for data in (encode(BGR, ".jpg"),
                 pil_encoded(Image.fromarray(BGR[:, :, ::-1]), "GIF")):
        assert decode(data).shape == (40, 60, 3)


def test_jpeg_channels_are_bgr():
    red = np.zeros((16, 16, 3), np.uint8)
    red[:, :, 2] = 255
    b, g, r = decode(encode(red, ".jpg"))[8, 8]
    assert r > 240 and b < 15 and g < 15


def test_grey_becomes_three_equal_channels():
    grey = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    out = decode(encode(grey, ".png"))
    assert out.shape == (20, 30, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_16_bit_keeps_the_high_byte():
    deep = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100)
    out = decode(encode(deep, ".png"))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 0], (deep >> 8).astype(np.uint8))


def test_transparency_is_laid_on_white():
    bgra = np.zeros((10, 10, 4), np.uint8)  # black, fully transparent ...
    bgra[5:, :, 3] = 255                    # ... except the lower half, opaque black
    out = decode(encode(bgra, ".png"))
    assert (out[:5] == 255).all() and (out[5:] == 0).all()


def test_exif_orientation_is_applied():
    img = Image.fromarray(np.zeros((10, 30, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    assert decode(pil_encoded(img, "JPEG", exif=exif)).shape == (30, 10, 3)


def test_base64_forms_accepted():
    data = encode(BGR, ".png")
    text = b64(data)
    for form in (text.rstrip("="), "data:image/png;base64," + text,
                 base64.encodebytes(data).decode()):  # MIME line breaks
        np.testing.assert_array_equal(decode_base64_image(form, LIMIT), BGR)


def test_pixel_bomb_is_refused_from_the_header_before_decoding():
    start = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match=r"^image is 20000x20000 = 400000000 pixels, over "
                                              r"the limit of 40000000$"):
        decode(png_claiming(20000, 20000))
    assert time.perf_counter() - start < 0.5  # 1.2 GB of pixels were never allocated


def test_limit_is_width_times_height():
    decode(encode(BGR, ".png"), max_pixels=40 * 60)
    with pytest.raises(PayloadTooLarge):
        decode(encode(BGR, ".png"), max_pixels=40 * 60 - 1)


JPEG = encode(BGR, ".jpg")
PNG = encode(BGR, ".png")


@pytest.mark.parametrize("text, message", [
    ("", "file is empty"),
    ("not base64!", "not valid base64"),
    (b64(PNG).replace("+", "-").replace("/", "_") + "-_", "not valid base64"),  # urlsafe
    ("ÄÖÜ", "not valid base64"),
    ("a", "not valid base64"),
    (b64(b"plain text, no picture"), "not an image of a supported format (JPEG, PNG, BMP, TIFF, "
                                     "WEBP, GIF, PPM)"),
    (b64(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n"), "not an image of a supported"),
    (b64(JPEG[: len(JPEG) // 2]), "JPEG image data is corrupt or truncated"),
    (b64(JPEG[:-2]), "JPEG image data is corrupt or truncated"),  # only the end marker missing
    (b64(PNG[: len(PNG) // 2]), "PNG image data is corrupt or truncated"),
    (b64(PNG[:40]), "not an image of a supported format"),  # cut before the pixels
    (b64(encode(np.zeros((1, 1, 3), np.uint8), ".png")),
     "image is 1x1; each side must be at least 4 pixels"),
    (b64(encode(np.zeros((3, 500, 3), np.uint8), ".png")),
     "image is 500x3; each side must be at least 4 pixels"),
], ids=["empty", "bad-chars", "urlsafe", "non-ascii", "bad-length", "text", "eps",
        "jpeg-half", "jpeg-no-eoi", "png-half", "png-cut-in-header", "1x1", "3-rows"])
def test_bad_images_are_refused_with_their_reason(text, message):
    with pytest.raises(BadRequest) as refused:
        decode_base64_image(text, LIMIT)
    assert refused.value.message.startswith(message)
    assert refused.value.status == 400
