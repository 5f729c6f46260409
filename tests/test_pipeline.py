"""The OCR pipeline (``pdserving.pipeline``) with fake models: plain numpy callables whose outputs
the tests construct, so the pipeline's own logic is what is checked: results put back in reading
order after width-sorted rec batches, drop_score, the 180-degree classifier, rec batches run side
by side, and an image without text.

The page: one text line per row, each a rectangle painted in two greys (its left half in the
line's own grey, its right half dark). The fake det lights each line's kernel in the probability
map; the fake rec reads a crop by the grey at its left end, so what it answers depends on which
crop it was given and which way round.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from dataclasses import dataclass

import numpy as np
import pytest

from pdserving.pipeline import DetStep, OcrOptions, OcrPipeline, RecStep

H, W = 320, 640  # multiples of 32 under det_limit: the det map is the page's own size
DARK = 40        # the right half of every line
MARGIN = 20      # painted around a kernel: covers the box DB's unclip grows around it (< 14 px)
CHARSET = list("abcdefghijklmnopqrstuvwxyz")
CLASSES = ["", *CHARSET, " "]  # PaddleOCR >= 2.0: blank first, space last


@dataclass(frozen=True)
class FakeLine:
    kernel: tuple[int, int, int, int]  # x0, y0, x1, y1 lit in the det map
    grey: int                          # its left half: what the fake rec reads it by
    text: str
    score: float                       # exact in float32, so the decoded score equals it


# In reading order, widest first: the rec batches (narrowest first) run in the reverse order.
LINES = [
    FakeLine((40, 20, 440, 40), 200, "alpha", 0.875),
    FakeLine((40, 90, 340, 110), 170, "bravo", 0.5),
    FakeLine((40, 160, 240, 180), 140, "charlie", 0.25),
    FakeLine((40, 230, 140, 250), 110, "delta", 0.75),
]
TEXTS = [line.text for line in LINES]
# What the fake rec answers for the grey at a crop's left end.
READS = {line.grey: (line.text, line.score) for line in LINES} | {DARK: ("upside down", 0.875)}


def page(flipped: frozenset[int] = frozenset()) -> np.ndarray:
    """The page of LINES; the lines at the indices in ``flipped`` turned 180 degrees."""
    img = np.full((H, W, 3), 255, np.uint8)
    for i, line in enumerate(LINES):
        x0, y0, x1, y1 = line.kernel
        mid = (x0 + x1) // 2
        left, right = (DARK, line.grey) if i in flipped else (line.grey, DARK)
        img[y0 - MARGIN:y1 + MARGIN, x0 - MARGIN:mid] = left
        img[y0 - MARGIN:y1 + MARGIN, mid:x1 + MARGIN] = right
    return img


def ends(sample: np.ndarray) -> tuple[int, int]:
    """The greys at the left and right end of a normalised crop (3, h, w), zero-padded on the
    right (values in [-1, 1]: no grey level is 0)."""
    row = sample[0, sample.shape[1] // 2]
    drawn = np.flatnonzero(row)
    return tuple(int(round((row[i] * 0.5 + 0.5) * 255)) for i in (drawn[0], drawn[-1]))


def read(grey: int) -> tuple[str, float]:
    known = min(READS, key=lambda g: abs(g - grey))
    assert abs(known - grey) <= 3, f"the rec model got a crop of no line (grey {grey})"
    return READS[known]


class FakeDet:
    """A DB probability map of the input's size with the kernels of ``lines`` lit."""

    def __init__(self, lines: list[FakeLine]):
        self.lines = lines
        self.shapes: list[tuple] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        n, _, h, w = batch.shape
        prob = np.zeros((n, 1, h, w), np.float32)
        for line in self.lines:
            x0, y0, x1, y1 = line.kernel
            prob[:, 0, y0:y1, x0:x1] = 0.9
        return prob


class FakeRec:
    """Reads each crop of a batch by its left end's grey; answers as the bundled rec model does
    (best path (N, T, 2)) or as a softmax-only one ((N, T, C)). With a ``barrier``, every call
    waits there for others: calls that do not overlap break it."""

    def __init__(self, softmax: bool = False, barrier: threading.Barrier | None = None):
        self.softmax = softmax
        self.barrier = barrier
        self.calls: list[list[tuple[int, int]]] = []  # per call, the (left, right) of each crop
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    @property
    def num_classes(self) -> int | None:
        return None if self.softmax else len(CLASSES)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.barrier is not None:
            self.barrier.wait()
        seen = [ends(sample) for sample in batch]
        with self._lock:
            self.calls.append(seen)
            self.threads.add(threading.current_thread().name)
        steps = batch.shape[3] // 8
        best = np.zeros((len(batch), steps, 2), np.float32)
        best[:, :, 1] = 0.99  # blank, not counted in the score
        for n, (left, _) in enumerate(seen):
            text, score = read(left)
            for k, char in enumerate(text):  # a blank between characters: none is merged
                best[n, 2 * k] = CLASSES.index(char), score
        if not self.softmax:
            return best
        idx, p = best[:, :, 0].astype(np.int64), best[:, :, 1:]
        probs = np.repeat((1 - p) / (len(CLASSES) - 1), len(CLASSES), axis=2)
        np.put_along_axis(probs, idx[:, :, None], p, axis=2)
        return probs.astype(np.float32)


class FakeCls:
    """Says "180", sure of it, of a crop darker at its left end than at its right."""

    def __init__(self):
        self.shapes: list[tuple] = []
        self.said_180: list[bool] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        flips = [left < right for left, right in map(ends, batch)]
        self.said_180 += flips
        return np.array([[0.02, 0.98] if f else [0.98, 0.02] for f in flips], np.float32)


def ocr(img: np.ndarray, rec: FakeRec, options: OcrOptions = OcrOptions(),
        det: FakeDet | None = None, cls: FakeCls | None = None):
    pipeline = OcrPipeline(DetStep(det or FakeDet(LINES)),
                           RecStep(rec, CHARSET, options, classifier=cls,
                                   num_classes=rec.num_classes), options)
    return pipeline(img)


@pytest.mark.parametrize("softmax", [False, True], ids=["best-path", "softmax"])
def test_lines_come_back_in_reading_order_though_rec_reads_them_narrowest_first(softmax):
    rec, det = FakeRec(softmax), FakeDet(LINES)
    lines = ocr(page(), rec, OcrOptions(rec_batch_size=2, rec_parallel=1), det=det)
    assert det.shapes == [(1, 3, H, W)]
    assert [(line.text, line.score) for line in lines] == [
        (line.text, pytest.approx(line.score)) for line in LINES]
    # The rec model got the crops narrowest first, two per batch: reading order reversed.
    assert [[read(left)[0] for left, _ in call] for call in rec.calls] == [
        ["delta", "charlie"], ["bravo", "alpha"]]
    for line, fake in zip(lines, LINES):  # each box around its own kernel, in page pixels
        x0, y0, x1, y1 = fake.kernel
        xs, ys = line.box[:, 0], line.box[:, 1]
        assert line.box.shape == (4, 2)
        assert x0 - MARGIN <= xs.min() < x0 and x1 <= xs.max() <= x1 + MARGIN
        assert y0 - MARGIN <= ys.min() < y0 and y1 <= ys.max() <= y1 + MARGIN


def test_lines_scoring_below_drop_score_are_dropped():
    def texts(drop_score: float) -> list[str]:
        return [line.text for line in ocr(page(), FakeRec(), OcrOptions(drop_score=drop_score))]

    assert texts(0.0) == TEXTS
    assert texts(0.5) == ["alpha", "bravo", "delta"]  # charlie (0.25) goes; 0.5 itself stays
    assert texts(0.8) == ["alpha"]
    assert texts(0.9) == []


def test_cls_turns_an_upside_down_crop_before_rec_reads_it():
    img = page(flipped=frozenset({1}))
    # Without the classifier, rec gets bravo's crop as it lies: dark end first.
    assert [line.text for line in ocr(img, FakeRec())] == [
        "alpha", "upside down", "charlie", "delta"]

    rec, cls = FakeRec(), FakeCls()
    lines = ocr(img, rec, cls=cls)
    assert cls.shapes == [(4, 3, 48, 192)]  # every crop once, at the classifier's size
    assert cls.said_180 == [False, True, False, False]
    assert [line.text for line in lines] == TEXTS
    # Every crop reached rec light end first: bravo's turned, the others as they were.
    assert sorted(crop for call in rec.calls for crop in call) == sorted(
        (line.grey, DARK) for line in LINES)


def test_a_calls_own_settings_hold_for_that_call_only():
    """``read`` with a request's settings (POST /ocr): its DB thresholds, its score filter and
    no classifier, without touching the pipeline's own."""
    rec, cls = FakeRec(), FakeCls()
    options = OcrOptions(drop_score=0.5, use_cls=True)
    pipeline = OcrPipeline(DetStep(FakeDet(LINES)),
                           RecStep(rec, CHARSET, options, classifier=cls,
                                   num_classes=rec.num_classes), options)
    img = page(flipped=frozenset({1}))
    reading = pipeline.read(img)
    assert [r.angle for r in reading.reads] == [0, 1, 0, 0]
    assert [line.text for line in reading.lines] == ["alpha", "bravo", "delta"]
    assert (reading.det, reading.use_cls, reading.drop_score) == (options.det, True, 0.5)

    strict = replace(options.det, box_thresh=0.95)  # over every kernel's 0.9
    assert len(pipeline.read(img, det=strict).boxes) == 0
    own = pipeline.read(img, use_cls=False, drop_score=0.0)
    assert [r.angle for r in own.reads] == [-1] * 4 and own.drop_score == 0.0
    assert [line.text for line in own.lines] == ["alpha", "upside down", "charlie", "delta"]
    assert len(own.boxes) == len(LINES)
    assert [line.text for line in pipeline(img)] == ["alpha", "bravo", "delta"]


def test_parallel_rec_batches_run_at_once_and_read_as_serial_ones():
    serial_rec = FakeRec()
    serial = ocr(page(), serial_rec, OcrOptions(rec_batch_size=1, rec_parallel=1))
    # Four one-line batches, two at a time: each call waits for a second one to arrive.
    rec = FakeRec(barrier=threading.Barrier(2, timeout=10))
    parallel = ocr(page(), rec, OcrOptions(rec_batch_size=1, rec_parallel=2))
    assert len(serial_rec.calls) == len(rec.calls) == 4
    assert sorted(read(left)[0] for [(left, _)] in rec.calls) == sorted(TEXTS)
    assert len(rec.threads) == 2
    assert [line.text for line in parallel] == [line.text for line in serial] == TEXTS
    assert [line.score for line in parallel] == [line.score for line in serial]
    for a, b in zip(parallel, serial):
        np.testing.assert_array_equal(a.box, b.box)


def test_an_image_without_text_gives_no_lines_and_no_rec_or_cls_call():
    rec, cls, det = FakeRec(), FakeCls(), FakeDet([])
    assert ocr(np.full((H, W, 3), 255, np.uint8), rec, det=det, cls=cls) == []
    assert det.shapes == [(1, 3, H, W)]
    assert rec.calls == [] and cls.shapes == []
