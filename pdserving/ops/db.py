"""Det post-processing: DB probability map -> text boxes (docs/design.md §3.3-3.5)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon


@dataclass(frozen=True)
class DetSettings:
    """DB det settings a folder records (``PreProcess.DetResizeForTest`` and ``PostProcess``).

    ``limit_type`` "max" caps the long side at ``limit_side_len`` (the 2020 kit's rule), "min"
    raises the short side to it; ``max_side_limit`` caps the long side in both. ``rounding``
    brings each side to a multiple of 32: "down" as the 2020 kit (``resize.det_resize``),
    "nearest" as PaddleOCR 3. Boxes with a side of ``min_box_side`` px or less (in the image) are
    dropped: 10 in the 2020 kit, 3 in PaddleOCR 3, whose rule reads text lines under 10 px high.
    The defaults, also for what a folder leaves unsaid, are the 2020 kit's.
    """

    limit_side_len: int = 960
    limit_type: str = "max"
    max_side_limit: int = 4000
    rounding: str = "down"
    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.5
    max_candidates: int = 1000
    min_box_side: int = 10


def order_points(pts: np.ndarray) -> np.ndarray:
    """Four points as tl, tr, br, bl: the two leftmost (by x) are split by y, same for the right."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def _min_area_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The ordered min-area rectangle around points, and its short side."""
    rect = cv2.minAreaRect(points.reshape(-1, 1, 2).astype(np.float32))
    return order_points(cv2.boxPoints(rect)), min(rect[1])


def _box_score(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean probability inside the box polygon, computed on its bounding-box crop only."""
    h, w = prob.shape
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = (box - [xmin, ymin]).astype(np.int32).reshape(1, -1, 2)
    cv2.fillPoly(mask, shifted, 1)
    return cv2.mean(prob[ymin:ymax + 1, xmin:xmax + 1], mask)[0]


def _unclip(box: np.ndarray, ratio: float) -> np.ndarray:
    """Grow the shrunk text kernel back to the text's extent: offset by area * ratio / perimeter."""
    poly = Polygon(box)
    distance = poly.area * ratio / poly.length
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(distance)
    if not paths:
        return np.zeros((0, 2), dtype=np.float32)
    return np.concatenate([np.asarray(p, dtype=np.float32) for p in paths])


def db_postprocess(prob: np.ndarray, ratio_h: float, ratio_w: float,
                   src_shape: tuple[int, ...], *, thresh: float = 0.3, box_thresh: float = 0.5,
                   max_candidates: int = 1000, unclip_ratio: float = 1.5,
                   min_size: float = 3) -> np.ndarray:
    """Boxes (K, 4, 2) float32, tl,tr,br,bl, in original-image pixels.

    ``prob`` is one image's map, (H, W) or (1, 1, H, W); ``ratio_h, ratio_w`` come from
    ``det_resize`` and ``src_shape`` is the original image's shape (boxes are clipped to it).
    """
    prob = np.asarray(prob, dtype=np.float32)
    if prob.ndim < 2 or prob.size != prob.shape[-2] * prob.shape[-1]:
        raise ValueError(f"expected one probability map (H, W) or (1, 1, H, W), got {prob.shape}")
    prob = prob.reshape(prob.shape[-2:])
    src_h, src_w = src_shape[:2]
    bitmap = (prob > thresh).astype(np.uint8) * 255
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[:max_candidates]:
        box, short = _min_area_box(contour)
        if short < min_size or _box_score(prob, box) <= box_thresh:
            continue
        expanded = _unclip(box, unclip_ratio)
        if len(expanded) < 3:
            continue
        box, short = _min_area_box(expanded)
        if short < min_size + 2:
            continue
        box[:, 0] = np.clip(np.round(box[:, 0] / ratio_w), 0, src_w)
        box[:, 1] = np.clip(np.round(box[:, 1] / ratio_h), 0, src_h)
        boxes.append(box)
    return np.array(boxes, dtype=np.float32).reshape(-1, 4, 2)


def filter_boxes(boxes: np.ndarray, src_shape: tuple[int, ...], min_width: int = 10,
                 min_height: int = 10) -> np.ndarray:
    """FilterBoxes: reorder, clip to the image, drop boxes too thin to hold a readable line."""
    h, w = src_shape[:2]
    kept = []
    for box in boxes:
        box = order_points(box)
        box[:, 0] = np.clip(box[:, 0], 0, w - 1).astype(np.int32)
        box[:, 1] = np.clip(box[:, 1], 0, h - 1).astype(np.int32)
        if (int(np.linalg.norm(box[0] - box[1])) <= min_width
                or int(np.linalg.norm(box[0] - box[3])) <= min_height):
            continue
        kept.append(box)
    return np.array(kept, dtype=np.float32).reshape(-1, 4, 2)


def sort_boxes(boxes: np.ndarray, y_tolerance: float = 10) -> np.ndarray:
    """SortedBoxes: reading order, top to bottom then left to right.

    Sorting by (y, x) of the top-left corner puts boxes of one line out of x order when their tops
    differ by a few pixels; a single pass swaps such neighbours (as the original does).
    """
    boxes = sorted(np.asarray(boxes, dtype=np.float32), key=lambda b: (b[0][1], b[0][0]))
    for i in range(len(boxes) - 1):
        a, b = boxes[i], boxes[i + 1]
        if abs(b[0][1] - a[0][1]) < y_tolerance and b[0][0] < a[0][0]:
            boxes[i], boxes[i + 1] = b, a
    return np.array(boxes, dtype=np.float32).reshape(-1, 4, 2)
