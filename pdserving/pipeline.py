"""The OCR pipeline: image -> det -> boxes -> crops -> (cls) -> rec -> lines.

Two steps hold the models: ``DetStep`` (a det-resized image -> boxes) and ``RecStep`` (line
images -> texts and scores). Their models are plain callables (``pdserving.engine.Model``): an
engine in this process (fast mode) or a model behind RPC (standard mode). ``OcrPipeline`` does
the rest around them, and takes any callable of the same form as a step: on Ray, a call to the
replica that runs it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import numpy as np

from pdserving.engine import Model
from pdserving.ops import cls as cls_ops
from pdserving.ops import crop, ctc, db, resize


@dataclass(frozen=True)
class OcrOptions:
    """Pipeline settings; the defaults are the original's (docs/design.md §3). The model
    folders' own settings replace ``det``, ``rec_height`` and ``rec_min_width``
    (``services.pipeline_options``)."""

    det: db.DetSettings = field(default_factory=db.DetSettings)  # det resize and DB thresholds
    rec_height: int = 48          # rec model input height (48 for PP-OCRv4, 32 for 2020 models)
    rec_batch_size: int = 6       # crops per rec batch, sorted by aspect ratio
    rec_min_width: int = 320      # floor of a rec batch's width
    rec_max_total_width: int = 3200  # batch size x width cap (6 lines of 320 px, 2 of 1600)
    rec_parallel: int = 2         # rec batches of one image run at once (model workers)
    use_cls: bool = False         # 180-degree classifier on crops (off, as in the original)
    cls_thresh: float = 0.9
    drop_score: float = 0.0       # drop lines whose rec score is below this (0 keeps all)


class Read(NamedTuple):
    """What rec made of one line image."""

    text: str
    score: float
    angle: int = -1  # the classifier's verdict: 0 upright, 1 turned 180 degrees; -1 not run


@dataclass
class Line:
    box: np.ndarray  # (4, 2) float32, original pixels, tl,tr,br,bl
    text: str
    score: float
    angle: int = -1  # as in ``Read``


@dataclass
class Reading:
    """Everything the pipeline found in one image: every box det kept, in reading order, and
    what rec read in each (PaddleOCR 3's answer reports both)."""

    boxes: np.ndarray  # (K, 4, 2) float32
    reads: list[Read]
    det: db.DetSettings  # the settings it was read with
    use_cls: bool
    drop_score: float

    @property
    def lines(self) -> list[Line]:
        """The lines that score at least ``drop_score``."""
        return [Line(box, *read) for box, read in zip(self.boxes, self.reads)
                if read.score >= self.drop_score]


class DetStep:
    """The det model between a det-resized 8-bit image and its text boxes: normalise, the model,
    DB post-process. Boxes come back in the original image's pixels, as DB found them.

    The call is the whole step so that it can run elsewhere (a Ray replica): only the resized
    image crosses to it, and only the boxes come back.
    """

    def __init__(self, model: Model, settings: db.DetSettings = db.DetSettings()):
        self.model = model
        self.settings = settings

    def __call__(self, resized: np.ndarray, ratios: tuple[float, float],
                 shape: tuple[int, ...], settings: db.DetSettings | None = None) -> np.ndarray:
        """``settings`` (a request's own thresholds) replace the step's for this call."""
        prob = self.model(resize.det_normalize(resized)[np.newaxis])
        s = settings or self.settings
        return db.db_postprocess(prob[0, 0], ratios[0], ratios[1], shape[:2], thresh=s.thresh,
                                 box_thresh=s.box_thresh, unclip_ratio=s.unclip_ratio,
                                 max_candidates=s.max_candidates)


class RecStep:
    """Text line images in, a ``Read`` per line out, in input order: turned upright by the
    classifier if there is one (unless the call says ``use_cls=False``), batched by aspect
    ratio, read by the rec model, CTC-decoded.

    The model returns either its class probabilities (N, T, C), or, given ``num_classes`` (C),
    their best path (N, T, 2) as the bundled rec model does (``ops.ctc.best_path``).
    """

    def __init__(self, model: Model, charset: Sequence[str], options: OcrOptions = OcrOptions(),
                 classifier: Model | None = None, num_classes: int | None = None):
        self.model = model
        self.charset = charset
        self.num_classes = num_classes
        self.options = options
        self.classifier = classifier
        # An image's rec batches go to the model side by side: with a model worker per core, a
        # lone request uses every core.
        self._calls = ThreadPoolExecutor(options.rec_parallel, thread_name_prefix="rec")

    def __call__(self, crops: list[np.ndarray], use_cls: bool = True) -> list[Read]:
        if not crops:
            return []
        angles = [-1] * len(crops)
        if self.classifier is not None and use_cls:
            crops, angles = self._orient(crops)
        out: list[Read] = [Read("", 0.0)] * len(crops)
        o = self.options
        batches = resize.rec_batches(crops, height=o.rec_height, batch_size=o.rec_batch_size,
                                     min_width=o.rec_min_width,
                                     max_total_width=o.rec_max_total_width)
        outputs = (self._calls.map(self.model, [b for _, b in batches]) if len(batches) > 1
                   else [self.model(batches[0][1])])
        for (indices, _), output in zip(batches, outputs):
            for i, (text, score) in zip(indices, self._decode(output)):
                out[i] = Read(text, score, angles[i])
        return out

    def _decode(self, output: np.ndarray) -> list[tuple[str, float]]:
        # Decided by what came back, not only by the config: a client folder older than its
        # model folder still fetches the softmax. (No real dictionary has 2 classes.)
        if self.num_classes is None or output.shape[-1] != 2:
            return ctc.ctc_decode(output, self.charset)
        return ctc.decode_best_path(output, self.num_classes, self.charset)

    def _orient(self, crops: list[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
        batch = np.stack([resize.cls_resize_normalize(c) for c in crops])
        flip = cls_ops.needs_flip(self.classifier(batch), thresh=self.options.cls_thresh)
        return cls_ops.apply_flip(crops, flip), [int(f) for f in flip]


# What the pipeline calls: a DetStep or RecStep here, or the same step on another machine.
Det = Callable[[np.ndarray, tuple[float, float], tuple[int, ...], db.DetSettings], np.ndarray]
Rec = Callable[..., list[Read]]  # (crops) or (crops, use_cls)


class OcrPipeline:
    """Whole-image OCR around the two steps: det resize, boxes in reading order, crops, and the
    lines that score at least ``drop_score``. A service that only detects (or only reads) has
    no ``rec`` (or ``det``). A call may bring settings of its own (a request's thresholds) in
    place of the pipeline's."""

    def __init__(self, det: Det | None, rec: Rec | None, options: OcrOptions = OcrOptions()):
        self.det = det
        self.rec = rec
        self.options = options

    def detect(self, img: np.ndarray, det: db.DetSettings | None = None) -> np.ndarray:
        """The text boxes of ``img`` in reading order, tl,tr,br,bl, in its pixels."""
        d = det or self.options.det
        resized, ratios = resize.det_resize(img, d.limit_side_len, limit_type=d.limit_type,
                                            max_side=d.max_side_limit, rounding=d.rounding)
        boxes = self.det(resized, ratios, img.shape[:2], d)
        return db.sort_boxes(db.filter_boxes(boxes, img.shape[:2], d.min_box_side,
                                             d.min_box_side))

    def recognize(self, crops: list[np.ndarray], use_cls: bool | None = None) -> list[Read]:
        """What rec reads in each line image, in order; ``use_cls=False`` skips the
        classifier for this call."""
        if not crops:
            return []
        return self.rec(crops) if use_cls is None else self.rec(crops, use_cls)

    def read(self, img: np.ndarray, det: db.DetSettings | None = None,
             use_cls: bool | None = None, drop_score: float | None = None) -> Reading:
        """Every box in ``img`` and what rec reads in it."""
        o = self.options
        boxes = self.detect(img, det)
        reads = self.recognize([crop.rotate_crop(img, box) for box in boxes], use_cls)
        return Reading(boxes, reads, det or o.det, o.use_cls if use_cls is None else use_cls,
                       o.drop_score if drop_score is None else drop_score)

    def __call__(self, img: np.ndarray) -> list[Line]:
        return self.read(img).lines
