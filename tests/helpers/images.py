"""Test images: black text on white drawn with OpenCV, their encoded files and base64, a crafted
PNG header, and the det model's input."""

import base64
import struct
import zlib

import cv2
import numpy as np

from pdserving.ops.resize import det_normalize

FONT = cv2.FONT_HERSHEY_SIMPLEX


def text_image(text: str = "HELLO 123", width: int = 360, height: int = 64, *,
               scale: float = 1.3, at: tuple[int, int] = (8, 46), thickness: int = 2
               ) -> np.ndarray:
    """A white BGR image with ``text`` in black, its baseline starting at ``at`` (x, y).

    The default is a line the OCR models read; any size makes a model input of that size.
    """
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, text, at, FONT, scale, (0, 0, 0), thickness)
    return img


def text_line(text: str) -> np.ndarray:
    """A tight text-line image (8 px either side of the text), as a det box's crop would be."""
    (w, _), _ = cv2.getTextSize(text, FONT, 1.3, 2)
    return text_image(text, w + 16, 56, at=(8, 42))


def det_batch(img: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32, normalised as the det model wants (docs/design.md §3.2)."""
    return det_normalize(img)[None]


def encode(img: np.ndarray, ext: str = ".png") -> bytes:
    """The file bytes of ``img`` in the format of ``ext``."""
    return cv2.imencode(ext, img)[1].tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png_claiming(width: int, height: int) -> bytes:
    """A 1 kB PNG whose header says ``width`` x ``height`` (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 999))
            + chunk(b"IEND", b""))
