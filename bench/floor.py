"""The engine floor: what the models alone cost for the tensors the pipeline gives them.

The pipeline runs once over the image set in-process (the fast service's own handler, built by
``services.local_handler``), with its det and rec models wrapped by a ``Recorder`` that keeps
every input batch, and with the pre/post-processing steps (``pdserving.ops``) timed as they run.
Then only the recorded batches are re-run, in the same order, on fresh in-process predictors at
each thread setting: that sum per image is the floor no service can beat at those threads. Both
passes run on one engine (``openvino`` or ``paddle``), the one whose floor it is.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np

from pdserving import malloc, metrics
from pdserving.engine import EngineOptions
from pdserving.engine.openvino_engine import OpenVINOEngine
from pdserving.engine.paddle_engine import PaddleEngine
from pdserving.imageio import decode_base64_image
from pdserving.ops import crop, ctc, db, resize
from pdserving.pipeline import OcrOptions
from pdserving.services import local_handler
from pdserving.web.app import WebSettings
from pdserving.web.schemas import parse_prediction

# Pre/post-processing steps: report name -> the ops functions the pipeline calls for it.
STEPS = {
    "det resize + normalise": [(resize, "det_resize"), (resize, "det_normalize")],
    "DB post-process + filter + sort": [(db, "db_postprocess"), (db, "filter_boxes"),
                                        (db, "sort_boxes")],
    "crop": [(crop, "rotate_crop")],
    "rec resize + batching": [(resize, "rec_batches")],
    "CTC decode": [(ctc, "ctc_decode")],
}
DECODE_STEP = "parse + decode (JSON, base64, image)"
ENGINES = {"openvino": OpenVINOEngine, "paddle": PaddleEngine}


class Recorder:
    """A model that passes calls through, keeping each input batch and the call's duration."""

    def __init__(self, model):
        self.model = model
        self.calls: list[tuple[np.ndarray, float]] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self.model(batch)
        self.calls.append((batch, time.perf_counter() - start))
        return out

    def take(self) -> list[tuple[np.ndarray, float]]:
        """The calls since the last ``take``."""
        calls, self.calls = self.calls, []
        return calls


@dataclass
class ImageProfile:
    """One image through the pipeline: total time, model time, step times (seconds)."""

    name: str
    total: float = 0.0                      # decode + pipeline, wall clock
    det_batches: list[np.ndarray] = field(default_factory=list)
    rec_batches: list[np.ndarray] = field(default_factory=list)
    det_time: float = 0.0                   # det model as called inside the pipeline
    rec_time: float = 0.0                   # rec model, all batches
    steps: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


@contextmanager
def timed_steps():
    """Patch the ops functions the pipeline calls so each adds its duration to ``times[step]``
    (yielded; clear it between images).

    The pipeline looks them up on their modules at call time, so patching the module attribute
    times exactly the calls the pipeline makes, without copying its code here.
    """
    times: dict[str, float] = defaultdict(float)

    def wrap(fn, step):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[step] += time.perf_counter() - start
        return timed

    with ExitStack() as stack:
        for step, targets in STEPS.items():
            for module, name in targets:
                stack.enter_context(mock.patch.object(module, name,
                                                      wrap(getattr(module, name), step)))
        yield times


def profile_pipeline(names: list[str], bodies: list[bytes], model_root: Path, engine: str,
                     threads: int) -> list[ImageProfile]:
    """Run the fast service's pipeline on ``engine`` once over the images in ``bodies`` (the
    HTTP bodies the services receive), after one warm-up image, recording model inputs and
    step times."""
    # One instance and rec batches one at a time, so each model call's time is its own.
    handler = local_handler("ocr", model_root,
                            EngineOptions(engine=engine, threads=threads, instances=1),
                            OcrOptions(rec_parallel=1))
    try:
        check_engine(engine)
        return _profile(handler, names, bodies)
    finally:
        handler.close()  # Paddle's worker processes: not left idle beside the services


def check_engine(engine: str) -> None:
    """Raise unless every model of the handler just built runs on ``engine`` (a model OpenVINO
    cannot read falls back to Paddle: the figures would be Paddle's)."""
    used = {s.labels["engine"] for m in metrics.ENGINE.collect() for s in m.samples}
    if used - {engine}:
        raise RuntimeError(f"floor on {engine}: models run on {', '.join(sorted(used))}")


def _profile(handler, names: list[str], bodies: list[bytes]) -> list[ImageProfile]:
    """The pass itself, on a built handler whose models it wraps in ``Recorder``s."""
    pipeline = handler.pipeline
    det = pipeline.det.model = Recorder(pipeline.det.model)
    rec = pipeline.rec.model = Recorder(pipeline.rec.model)
    settings = WebSettings()

    def decode(body: bytes) -> np.ndarray:
        request = parse_prediction(body, handler.name, handler.outputs, settings.max_images)
        return decode_base64_image(request.images[0], settings.max_image_pixels)

    pipeline(decode(bodies[0]))  # warm-up: first-call costs belong to cold start, not here
    det.take(), rec.take()
    profiles = []
    with timed_steps() as times:
        for name, body in zip(names, bodies):
            p = ImageProfile(name)
            times.clear()
            start = time.perf_counter()
            img = decode(body)
            times[DECODE_STEP] = time.perf_counter() - start
            lines = pipeline(img)
            p.total = time.perf_counter() - start
            p.steps = dict(times)
            det_calls, rec_calls = det.take(), rec.take()
            p.det_batches = [b for b, _ in det_calls]
            p.rec_batches = [b for b, _ in rec_calls]
            p.det_time = sum(t for _, t in det_calls)
            p.rec_time = sum(t for _, t in rec_calls)
            p.lines = [line.text for line in lines]
            profiles.append(p)
    return profiles


@dataclass
class Floor:
    """Model time alone per image at one thread setting (seconds, one entry per image)."""

    engine: str
    threads: int
    det: list[float]
    rec: list[float]

    @property
    def per_image(self) -> list[float]:
        return [d + r for d, r in zip(self.det, self.rec)]


def model_floor(profiles: list[ImageProfile], model_root: Path, engine: str, threads: int,
                runs: int) -> Floor:
    """Re-run the recorded batches alone, in-process, on one ``engine`` instance per model
    (one OpenVINO stream, or one Paddle predictor) at ``threads``.

    The batches run in the order the pipeline made them, the whole sequence ``runs`` times, and
    each image keeps its fastest pass: the models see the same succession of input shapes as in
    a service (a shape new to oneDNN costs set-up there too), while load from elsewhere on the
    machine only ever adds time.
    """
    malloc.for_models()  # as in Paddle's model workers: freed buffers stay for the next run
    options = EngineOptions(engine=engine, threads=threads, instances=1)
    det = ENGINES[engine](model_root / "ocr_det_model", options)
    rec = ENGINES[engine](model_root / "ocr_rec_model", options)

    def cost(model, batches: list[np.ndarray]) -> float:
        start = time.perf_counter()
        for batch in batches:
            model(batch)
        return time.perf_counter() - start

    det_t = [float("inf")] * len(profiles)
    rec_t = [float("inf")] * len(profiles)
    for _ in range(runs):
        for i, p in enumerate(profiles):
            det_t[i] = min(det_t[i], cost(det, p.det_batches))
            rec_t[i] = min(rec_t[i], cost(rec, p.rec_batches))
    return Floor(engine, threads, det=det_t, rec=rec_t)
