"""``paddle_serving_app.reader`` as Paddle Serving 0.3/0.4 had it, over ``pdserving.ops``.

PaddleOCR's 2020 serving scripts build their pre- and post-processing from these classes. Each
one keeps its 2020 name, arguments and return shape, and hands the work to the pdserving.ops
function that does that step for the services, so a script and the kit cannot drift apart.

Differences a script may notice: an image op given something that is not an image (``None`` is
what ``cv2.imdecode`` gives for bad bytes) raises ``BadRequest``, which the web layer answers
with a 400 JSON error instead of a traceback; ``OCRReader`` takes its settings as arguments and
from the model folder, not from the command line; box lists come back as (K, 4, 2) arrays.
"""

from __future__ import annotations

import inspect
import os
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from pdserving import package
from pdserving.engine.model_folder import BEST_PATH, ModelFolder
from pdserving.errors import BadRequest
from pdserving.ops import crop, ctc, db, resize

__all__ = [
    "Sequential", "URL2Image", "File2Image", "ResizeByFactor", "Div", "Normalize", "Transpose",
    "DBPostProcess", "FilterBoxes", "GetRotateCropImage", "SortedBoxes", "OCRReader",
]

DEFAULT_REC_HEIGHT = 48  # the bundled PP-OCRv4 rec model

# The rec model's outputs under the 2020 model's names (the bundled config's aliases).
_BEST_ALIAS, _PROBS_ALIAS = package.FETCH_ALIASES["ocr_rec"]


def _image(op: str, img: Any, channels_last: bool = True) -> np.ndarray:
    """``img`` if it is an image array, else BadRequest naming the op.

    A decode failure upstream gives ``None``; without this check it would surface deep inside
    OpenCV or numpy as a 500 with a message the client cannot act on.
    """
    if (isinstance(img, np.ndarray) and img.ndim == 3 and img.size
            and (not channels_last or img.shape[2] == 3)):
        return img
    expected = "an image (H x W x 3 array)" if channels_last else "an image array (3-D)"
    if img is None:
        got = "None"
    elif isinstance(img, np.ndarray):
        got = f"an array of shape {img.shape}"
    else:
        got = f"a {type(img).__name__}"
    raise BadRequest(f"{op}: expected {expected}, got {got}")


def _decode(data: bytes) -> np.ndarray | None:
    """File bytes -> BGR image, or None when they are not an image (as the original returned)."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


class Sequential:
    """Transforms applied in order; each checks its own input."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]):
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return f"Sequential({self.transforms!r})"


class File2Image:
    """A file path -> BGR image (None when the file is not an image)."""

    def __call__(self, path: str | os.PathLike) -> np.ndarray | None:
        return _decode(Path(path).read_bytes())


class URL2Image:
    """A URL -> BGR image (None when the body is not an image).

    The timeout is ours: the original waited forever on a server that never answered.
    """

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout

    def __call__(self, url: str) -> np.ndarray | None:
        with urllib.request.urlopen(url, timeout=self.timeout) as resp:
            return _decode(resp.read())


class ResizeByFactor:
    """The det model's input size: sides multiples of ``factor``, the long side capped at
    ``max_side_len`` (``resize.det_resize``). 2400 is the original's default; the OCR scripts
    pass 960, the kit's own limit."""

    def __init__(self, factor: int = 32, max_side_len: int = 2400):
        self.factor = factor
        self.max_side_len = max_side_len

    def __call__(self, img: Any) -> np.ndarray:
        img = _image("ResizeByFactor", img)
        return resize.det_resize(img, limit=self.max_side_len, stride=self.factor)[0]

    def __repr__(self) -> str:
        return f"ResizeByFactor(factor={self.factor}, max_side_len={self.max_side_len})"


class Div:
    """Divide by ``value``, as float32 (``Div(255)`` maps pixels to [0, 1])."""

    def __init__(self, value: float):
        self.value = value

    def __call__(self, img: Any) -> np.ndarray:
        return _image("Div", img, channels_last=False).astype(np.float32) / np.float32(self.value)

    def __repr__(self) -> str:
        return f"Div({self.value})"


class Normalize:
    """``(x - mean) / std`` per channel, as float32; the channels are the last axis (HWC), or
    the first with ``channel_first`` (CHW)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], channel_first: bool = False):
        self.mean = mean
        self.std = std
        self.channel_first = channel_first
        shape = (-1, 1, 1) if channel_first else (-1,)
        self._mean = np.asarray(mean, dtype=np.float32).reshape(shape)
        self._std = np.asarray(std, dtype=np.float32).reshape(shape)

    def __call__(self, img: Any) -> np.ndarray:
        img = _image("Normalize", img, channels_last=False)
        return (img.astype(np.float32) - self._mean) / self._std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std}, channel_first={self.channel_first})"


class Transpose:
    """Reorder the axes (``(2, 0, 1)``: HWC -> CHW, the models' layout); contiguous, so the
    result goes to a model or over RPC without another copy."""

    def __init__(self, transpose_target: Sequence[int]):
        self.transpose_target = tuple(transpose_target)

    def __call__(self, img: Any) -> np.ndarray:
        img = _image("Transpose", img, channels_last=False)
        return np.ascontiguousarray(img.transpose(self.transpose_target))

    def __repr__(self) -> str:
        return f"Transpose({self.transpose_target})"


class DBPostProcess:
    """DB probability maps -> text boxes in original-image pixels (``db.db_postprocess``).

    ``params`` has the original's keys; the ones left out take the values the 2020 OCR
    scripts passed (the original required all four and fixed ``min_size`` at 3).
    """

    # db.db_postprocess's own keyword defaults: the values the 2020 OCR scripts passed.
    DEFAULTS = {name: p.default for name, p in
                inspect.signature(db.db_postprocess).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def __init__(self, params: Mapping[str, float] | None = None):
        params = dict(params or {})
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"DBPostProcess: unknown parameters {sorted(unknown)}; "
                             f"known: {', '.join(self.DEFAULTS)}")
        self.params = {**self.DEFAULTS, **params}

    def __call__(self, pred: Any, ratio_list: Sequence[Sequence[float]]) -> list[np.ndarray]:
        """``pred`` (N, C, H, W), channel 0 the probability map; ``ratio_list[i]`` is image i's
        (resized / original) height and width ratios. One (K, 4, 2) float32 array per image."""
        pred = np.asarray(pred, dtype=np.float32)
        if pred.ndim != 4:
            raise ValueError(f"DBPostProcess: expected the det output (N, C, H, W), "
                             f"got shape {pred.shape}")
        if len(ratio_list) < len(pred):
            raise ValueError(f"DBPostProcess: {len(pred)} maps but {len(ratio_list)} ratios")
        h, w = pred.shape[2:]
        out = []
        for prob, (ratio_h, ratio_w) in zip(pred[:, 0], ratio_list):
            # The original size, which the ratios were computed from: boxes are clipped to it.
            src_shape = (round(h / ratio_h), round(w / ratio_w))
            out.append(db.db_postprocess(prob, ratio_h, ratio_w, src_shape, **self.params))
        return out

    def __repr__(self) -> str:
        return f"DBPostProcess({self.params})"


class FilterBoxes:
    """Drop boxes no wider than ``width`` or no taller than ``height`` (``db.filter_boxes``)."""

    def __init__(self, width: int, height: int):
        self.filter_width = width
        self.filter_height = height

    def __call__(self, boxes: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
        return db.filter_boxes(boxes, tuple(image_shape[:2]), self.filter_width,
                               self.filter_height)


class SortedBoxes:
    """Boxes in reading order (``db.sort_boxes``)."""

    def __call__(self, boxes: np.ndarray) -> np.ndarray:
        return db.sort_boxes(boxes)


class GetRotateCropImage:
    """The upright crop of one box (``crop.rotate_crop``); unlike the original, the box is
    left as it was."""

    def __call__(self, img: Any, points: np.ndarray) -> np.ndarray:
        return crop.rotate_crop(_image("GetRotateCropImage", img), points)


class OCRReader:
    """The rec model's input and output: crop -> normalised line, outputs -> text.

    The 2020 class read its settings from ``sys.argv``, which failed on the scripts' own
    arguments; here they are arguments, and what the model folder says fills the rest. Rec
    height: ``image_shape[1]``, else ``<model_dir>``'s model's input height, else 48.
    Dictionary: ``char_dict_path``, else the one in ``<model_dir>``, else the bundled one.
    ``model_dir`` is relative to the current directory, where the scripts keep their models.
    ``algorithm``, ``char_type`` and ``batch_num`` are kept for the 2020 signature only: the
    dictionary decides the characters, and the scripts batch crops themselves.
    """

    def __init__(self, algorithm: str = "CRNN", image_shape: Sequence[int] | None = None,
                 char_type: str = "ch", batch_num: int = 1,
                 char_dict_path: str | os.PathLike | None = None,
                 model_dir: str | os.PathLike = "ocr_rec_model"):
        self.algorithm = algorithm
        self.char_type = char_type
        self.batch_num = batch_num
        model = Path(model_dir)
        folder = ModelFolder.read(model) if model.is_dir() else None
        if image_shape is not None:
            self.height = int(image_shape[1])
        else:
            self.height = (folder and folder.rec_height) or DEFAULT_REC_HEIGHT
        if char_dict_path is None:
            char_dict_path = folder.dictionary if folder else None
            if not (char_dict_path and char_dict_path.is_file()):
                char_dict_path = package.bundled_dictionary()
        self.char_dict_path = Path(char_dict_path)
        # A fetch map's rec outputs: under the 2020 names first, then the folder's own.
        real = [v.name for v in folder.fetches] if folder else [BEST_PATH]
        self._best_keys = (_BEST_ALIAS, *(n for n in real if n == BEST_PATH))
        self._probs_keys = (_PROBS_ALIAS, *(n for n in real if n != BEST_PATH))
        self.charset = ctc.load_dictionary(self.char_dict_path)
        # Without the class probabilities in a fetch map, the class count of the best path's
        # model is the folder's (2020 models: blank last), else PaddleOCR >= 2.0's.
        self._num_classes = (folder and folder.best_path_classes) or len(self.charset) + 2

    def resize_norm_img(self, img: Any, max_wh_ratio: float) -> np.ndarray:
        """One crop -> float32 (3, H, int(H * max_wh_ratio)): the width of the batch's widest
        crop, so all crops of one batch share a shape (the original's ``32 * max_wh_ratio``
        for its 32-px model)."""
        img = _image("OCRReader.resize_norm_img", img)
        return resize.rec_resize_normalize(img, self.height, int(self.height * max_wh_ratio))

    def postprocess(self, fetch_map: Mapping[str, Any] | None,
                    with_score: bool = False) -> list[tuple]:
        """The rec outputs of one batch -> ``[(text, score)]`` (``with_score``) or ``[(text,)]``,
        one per line. An empty map (nothing was sent to the model) gives []."""
        if not fetch_map:
            return []
        best = next((fetch_map[k] for k in self._best_keys if k in fetch_map), None)
        probs = next((fetch_map[k] for k in self._probs_keys if k in fetch_map), None)
        if best is not None:
            num_classes = np.shape(probs)[-1] if probs is not None else self._num_classes
            results = ctc.decode_best_path(np.asarray(best, dtype=np.float32), num_classes,
                                           self.charset)
        elif probs is not None:
            results = ctc.ctc_decode(np.asarray(probs, dtype=np.float32), self.charset)
        else:
            raise ValueError(
                f"OCRReader.postprocess: no rec output in the fetch map (keys {sorted(fetch_map)});"
                f" looked for the best path under {' or '.join(self._best_keys)} and the class "
                f"probabilities under {' or '.join(self._probs_keys)}")
        return [(text, float(score)) if with_score else (text,) for text, score in results]
