"""Old home of helpers now in ``tests.helpers``, kept only while tests/test_packaging.py imports
from here (new code: ``tests.helpers.paths.ROOT``, ``tests.helpers.images.det_batch`` and
``text_image(width=320, height=96)``)."""

import numpy as np

from tests.helpers import images
from tests.helpers.images import det_batch
from tests.helpers.paths import ROOT

__all__ = ["ROOT", "det_batch", "text_image"]


def text_image(text: str = "pdserving 0.1", size: tuple[int, int] = (96, 320)) -> np.ndarray:
    """The image this module drew before (a det input: both sides multiples of 32)."""
    return images.text_image(text, size[1], size[0], scale=1.0, at=(10, size[0] // 2 + 10))
