"""A picture of what OCR found (PaddleX's ``ocrImage``): the image with each text box tinted and
outlined, beside a white page with each text written where its box is."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

_ALPHA = 0.35  # the tint's weight over the image


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's own font: nothing to download or install. It has Latin glyphs only; other
    # scripts are drawn as empty boxes (the texts themselves are in the answer).
    return ImageFont.load_default(size)


def _colors(n: int) -> np.ndarray:
    """``n`` distinct, fairly dark colours, the same for the same ``n``."""
    return np.random.default_rng(0).integers(0, 200, (n, 3))


def draw_ocr(img: np.ndarray, boxes: np.ndarray, texts: list[str]) -> np.ndarray:
    """BGR ``img`` (H, W) with ``boxes`` (K, 4, 2) tinted, and to its right a white page of the
    same size with ``texts`` in those boxes: (H, 2W) BGR."""
    h, w = img.shape[:2]
    tinted = img.copy()
    page = Image.new("RGB", (w, h), "white")
    pen = ImageDraw.Draw(page)
    points = [np.rint(b).astype(np.int32) for b in np.asarray(boxes).reshape(-1, 4, 2)]
    colors = _colors(len(points)).tolist()
    for pts, text, color in zip(points, texts, colors):
        cv2.fillPoly(tinted, [pts], color)
        rgb = tuple(color[::-1])
        pen.polygon([tuple(p) for p in pts.tolist()], outline=rgb)
        x, y = pts.min(axis=0)
        box_w, box_h = pts.max(axis=0) - (x, y)
        size = max(8, int(box_h * 0.8))
        length = _font(size).getlength(text) if text else 0
        if length > box_w > 0:  # a long line: a smaller font, so it fits its box
            size = max(8, int(size * box_w / length))
        pen.text((int(x) + 2, int(y)), text, fill=rgb, font=_font(size))
    left = cv2.addWeighted(tinted, _ALPHA, img, 1 - _ALPHA, 0)
    for pts, color in zip(points, colors):
        cv2.polylines(left, [pts], True, color, 2)
    right = cv2.cvtColor(np.asarray(page), cv2.COLOR_RGB2BGR)
    return np.hstack([left, right])
