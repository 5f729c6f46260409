"""Encoded test images shared by the test modules: file bytes, base64, a crafted PNG header."""

import base64
import struct
import zlib

import cv2
import numpy as np


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
