"""Resizing and normalisation of model inputs (docs/design.md §3.1, 3.2, 3.7)."""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

# ImageNet statistics, applied to the B,G,R channels as they come (the original does no swap).
DET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
DET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _round_side(side: int, stride: int, rounding: str = "down") -> int:
    """The original's rounding ("down"): keep multiples, else one stride below the floor; or
    PaddleOCR 3's ("nearest"). Never below ``stride``."""
    if rounding == "nearest":
        return max(round(side / stride) * stride, stride)
    if side % stride == 0:
        return side
    if side // stride <= 1:
        return stride
    return (side // stride - 1) * stride


def det_resize(img: np.ndarray, limit: int = 960, stride: int = 32, limit_type: str = "max",
               max_side: int = 4000, rounding: str = "down"
               ) -> tuple[np.ndarray, tuple[float, float]]:
    """ResizeByFactor(stride, limit): the det input size; ratios map boxes back to the original.

    ``limit_type`` "max" (the 2020 rule) shrinks the long side to ``limit``; "min" (PaddleOCR
    3's) enlarges the short side to it, with the long side then at most ``max_side``; sides
    are then rounded to multiples of ``stride`` (``rounding``: "down" or "nearest").
    """
    h, w = img.shape[:2]
    ratio = 1.0
    if limit_type == "min":
        if min(h, w) < limit:
            ratio = limit / min(h, w)
        if max(h, w) * ratio > max_side:
            ratio = max_side / max(h, w)
    elif max(h, w) > limit:
        ratio = limit / h if h > w else limit / w
    rh = _round_side(int(h * ratio), stride, rounding)
    rw = _round_side(int(w * ratio), stride, rounding)
    resized = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR)
    return resized, (rh / h, rw / w)


def det_normalize(img: np.ndarray) -> np.ndarray:
    """BGR uint8 HWC -> float32 CHW with the det model's mean/std: ``(x / 255 - mean) / std``
    in float32, each channel written in place into the one output array. (The same arithmetic
    in whole-array steps made four 4-byte-per-pixel temporaries: up to 11 MB each on a 960 px
    page, and on fresh pages each time, which took twice as long.)"""
    out = np.empty((3, *img.shape[:2]), dtype=np.float32)
    for c in range(3):
        np.divide(img[:, :, c], np.float32(255.0), out=out[c], dtype=np.float32)
        out[c] -= DET_MEAN[c]
        out[c] /= DET_STD[c]
    return out


def rec_resize_normalize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """A text line -> float32 CHW (3, height, width): aspect kept, scaled to [-1, 1], zero-padded
    on the right so crops of different widths share one batch."""
    h, w = img.shape[:2]
    resized_w = min(int(math.ceil(height * w / h)), width)
    resized = cv2.resize(img, (resized_w, height), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :resized_w] = (resized.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


CLS_SIZE = (48, 192)  # the 180-degree classifier's fixed input height and width


def cls_resize_normalize(img: np.ndarray, height: int = CLS_SIZE[0],
                         width: int = CLS_SIZE[1]) -> np.ndarray:
    """A crop -> the 180-degree classifier's fixed 3x48x192 input (same scaling as rec)."""
    return rec_resize_normalize(img, height, width)


def rec_batches(crops: Sequence[np.ndarray], height: int = 48, batch_size: int | None = 6,
                min_width: int = 320, max_total_width: int | None = None
                ) -> list[tuple[list[int], np.ndarray]]:
    """Cut crops into rec batches of similar aspect ratio (less padding, shorter sequences).

    Returns ``(indices, batch)`` pairs: ``indices`` are positions in ``crops``, so the caller puts
    results back in the crops' order. Each batch's width is ``int(height * max w/h)``, at least
    ``min_width`` (PaddleOCR's recogniser: height 48, floor 320). ``max_total_width`` also caps
    batch size x width: long lines go in small batches, where batching gains nothing and a
    full batch would multiply the model's memory. ``batch_size=None, min_width=0, height=32`` is
    the original single batch with ``W = int(32 * max_wh_ratio)``.
    """
    ratios = [c.shape[1] / c.shape[0] for c in crops]
    order = sorted(range(len(crops)), key=ratios.__getitem__)
    step = batch_size or max(len(crops), 1)
    groups: list[list[int]] = []
    for i in order:  # widest last, so a batch's width is that of its newest crop
        width = max(min_width, int(height * ratios[i]))
        if (groups and len(groups[-1]) < step
                and (max_total_width is None or (len(groups[-1]) + 1) * width <= max_total_width)):
            groups[-1].append(i)
        else:
            groups.append([i])
    batches = []
    for indices in groups:
        width = max(min_width, int(height * max(ratios[i] for i in indices)))
        batch = np.stack([rec_resize_normalize(crops[i], height, width) for i in indices])
        batches.append((indices, batch))
    return batches
