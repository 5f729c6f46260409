"""Cutting text lines out of the image (docs/design.md §3.6)."""

from __future__ import annotations

import cv2
import numpy as np


def rotate_crop(img: np.ndarray, box: np.ndarray) -> np.ndarray:
    """GetRotateCropImage: warp a tl,tr,br,bl quadrilateral to an upright w x h crop.

    w and h are the longer of each pair of opposite edges. A crop at least 1.5 times taller than
    wide is taken for vertical text and turned 90 degrees so the recogniser reads it as a line.
    """
    pts = np.asarray(box, dtype=np.float32).reshape(4, 2)
    w = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    h = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    if w < 1 or h < 1:
        raise ValueError(f"degenerate box {pts.tolist()}: crop would be {w}x{h}")
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(pts, target)
    crop = cv2.warpPerspective(img, matrix, (w, h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
    if h / w >= 1.5:
        crop = cv2.rotate(crop, cv2.ROTATE_90_COUNTERCLOCKWISE)  # = np.rot90, contiguous
    return crop
