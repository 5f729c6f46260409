"""Helpers shared by the RPC tests: a real text image for the det model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pdserving.ops.resize import det_normalize

ROOT = Path(__file__).resolve().parents[1]


def text_image(text: str = "pdserving 0.1", size: tuple[int, int] = (96, 320)) -> np.ndarray:
    """A white BGR image with black text: a real input for the det model."""
    img = np.full((*size, 3), 255, np.uint8)
    cv2.putText(img, text, (10, size[0] // 2 + 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    return img


def det_batch(img: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32, normalised as the det model wants (SPEC 3.2)."""
    return det_normalize(img)[None]
