"""The optional 180-degree classifier's post-processing (docs/design.md §3.9)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

LABELS = ("0", "180")


def needs_flip(probs: np.ndarray, thresh: float = 0.9) -> np.ndarray:
    """Which crops are upside down: label ``180`` with probability >= thresh (bool per crop).

    The threshold keeps uncertain crops as they are: a wrong flip costs the whole line.
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(LABELS):
        raise ValueError(f"expected cls output (N, 2) for labels {LABELS}, got {probs.shape}")
    return (probs.argmax(axis=1) == LABELS.index("180")) & (probs.max(axis=1) >= thresh)


def apply_flip(crops: Sequence[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    """The crops with those marked in ``mask`` turned 180 degrees."""
    return [cv2.rotate(c, cv2.ROTATE_180) if m else c for c, m in zip(crops, mask)]
