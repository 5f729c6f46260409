"""The OCR, det-only and rec-only services: what each answers, and how its models are built.

A handler turns decoded images into the ``result`` object of SPEC section 4. It does not know
whether its models run in this process (fast mode, ``local_handler``) or behind RPC (standard
mode, ``remote_handler``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pdserving import metrics, modelconf
from pdserving.engine import Model
from pdserving.engine.paddle_engine import EngineOptions
from pdserving.engine.process_pool import WorkerPool
from pdserving.ops import ctc
from pdserving.package import BEST_PATH, DICT_NAME, FEED_ALIAS, ensure_model
from pdserving.pipeline import Detector, OcrOptions, OcrPipeline, Recognizer
from pdserving.rpc.client import RemoteModel

ReadyCheck = Callable[[], "str | None"]


def _shape(per_image: list[dict], fetch: Sequence[str]) -> dict:
    """One image: the flat form; several: each output a list with one entry per image."""
    if len(per_image) == 1:
        return per_image[0]
    return {name: [r[name] for r in per_image] for name in fetch}


def _boxes_json(boxes) -> list:
    return np.rint(np.asarray(boxes, dtype=np.float32)).astype(int).tolist()


@dataclass
class _Handler:
    ready_checks: list[ReadyCheck] = field(default_factory=list, kw_only=True)
    closers: list[Callable[[], None]] = field(default_factory=list, kw_only=True)

    def ready(self) -> str | None:
        for check in self.ready_checks:
            reason = check()
            if reason:
                return reason
        return None

    def close(self) -> None:
        """Stop what the handler started (model worker processes, RPC channels)."""
        for close in self.closers:
            close()


@dataclass
class OcrHandler(_Handler):
    """Whole-image OCR: texts (``res``), and on request ``dt_boxes`` and ``rec_scores``."""

    pipeline: OcrPipeline
    name: str = "ocr"
    outputs: tuple[str, ...] = ("res", "dt_boxes", "rec_scores")

    def __call__(self, images: list[np.ndarray], fetch: list[str]) -> dict:
        per_image = []
        for img in images:
            lines = self.pipeline(img)
            out = {"res": [ln.text for ln in lines],
                   "dt_boxes": _boxes_json([ln.box for ln in lines]),
                   "rec_scores": [round(float(ln.score), 6) for ln in lines]}
            per_image.append({k: out[k] for k in fetch})
        return _shape(per_image, fetch)


@dataclass
class DetHandler(_Handler):
    """Text detection only: boxes in original-image pixels, tl,tr,br,bl, in reading order.

    ``fetch: ["res"]``, which the original client sends to every service, also gets the boxes.
    """

    detector: Detector
    name: str = "det"
    outputs: tuple[str, ...] = ("dt_boxes", "res")

    def __call__(self, images: list[np.ndarray], fetch: list[str]) -> dict:
        per_image = [{"dt_boxes": _boxes_json(self.detector(img))} for img in images]
        return _shape(per_image, ["dt_boxes"])


@dataclass
class RecHandler(_Handler):
    """Recognition only: every feed image is one text line; one string per image, in order."""

    recognizer: Recognizer
    name: str = "rec"
    outputs: tuple[str, ...] = ("res", "rec_scores")

    def __call__(self, images: list[np.ndarray], fetch: list[str]) -> dict:
        results = self.recognizer(images)
        out = {"res": [t for t, _ in results],
               "rec_scores": [round(float(s), 6) for _, s in results]}
        return {k: out[k] for k in fetch}


def rec_config(rec_dir: Path) -> modelconf.GeneralModelConfig | None:
    """The rec model's config file, or None for a folder without one (defaults apply)."""
    try:
        return modelconf.load_config(rec_dir)
    except FileNotFoundError:
        return None


def rec_best_path_classes(conf: modelconf.GeneralModelConfig | None) -> int | None:
    """The class count when the rec model's first output is the best path (the bundled model,
    ``pdserving.package``) and None when it is the class probabilities (a converted model)."""
    fetch = conf.fetch_var if conf else []
    if len(fetch) > 1 and fetch[0].name == BEST_PATH:
        return fetch[1].shape[-1]
    return None


def rec_height(conf: modelconf.GeneralModelConfig | None, default: int = 48) -> int:
    """The rec model's input height, from its config (48 for PP-OCRv4, 32 for 2020)."""
    feeds = modelconf.feed_vars(conf) if conf else []
    shape = feeds[0].shape if feeds else []
    return shape[1] if len(shape) == 3 and shape[1] > 0 else default


def build_handler(kind: str, det: Model | None, rec: Model | None, rec_dir: Path | None,
                  options: OcrOptions = OcrOptions(), cls: Model | None = None,
                  ready_checks: Sequence[ReadyCheck] = ()) -> _Handler:
    """Assemble the handler for ``kind`` ("ocr", "det" or "rec") from its models."""
    checks = list(ready_checks)
    detector = recognizer = None
    if det is not None:
        detector = Detector(metrics.timed(det, "det"), options)
    if rec is not None and rec_dir is not None:
        conf = rec_config(rec_dir)
        options = OcrOptions(**{**options.__dict__, "rec_height": rec_height(conf)})
        charset = ctc.load_dictionary(rec_dir / DICT_NAME)
        recognizer = Recognizer(metrics.timed(rec, "rec"), charset, options,
                                classifier=metrics.timed(cls, "cls") if cls else None,
                                num_classes=rec_best_path_classes(conf))
    if kind == "ocr":
        return OcrHandler(OcrPipeline(detector, recognizer), ready_checks=checks)
    if kind == "det":
        return DetHandler(detector, ready_checks=checks)
    if kind == "rec":
        return RecHandler(recognizer, ready_checks=checks)
    raise ValueError(f"unknown service kind {kind!r}: expected ocr, det or rec")


def local_handler(kind: str, model_root: str | Path = ".",
                  engine: EngineOptions | None = None,
                  options: OcrOptions = OcrOptions()) -> _Handler:
    """Fast mode: the models this service needs in ``engine.instances`` worker processes of
    this machine, loaded and warmed up. ``handler.close()`` stops them."""
    engine = engine or EngineOptions(instances=2)
    root = Path(model_root)
    names = {"ocr": ["det", "rec"], "det": ["det"], "rec": ["rec"]}[kind]
    if options.use_cls and "rec" in names:
        names.append("cls")
    warm = {"det": (1, 3, 640, 640), "cls": (1, 3, 48, 192),
            "rec": (options.rec_batch_size, 3, options.rec_height, options.rec_min_width)}
    pool = WorkerPool({n: ensure_model(root / f"ocr_{n}_model") for n in names}, engine,
                      workers=engine.instances,
                      warmup={n: np.zeros(warm[n], np.float32) for n in names})
    models = pool.models
    handler = build_handler(kind, models.get("det"), models.get("rec"),
                            root / "ocr_rec_model" if "rec" in models else None, options,
                            models.get("cls"))
    handler.closers.append(pool.close)
    return handler


def _remote(name: str, endpoints: list[str], root: Path) -> tuple[RemoteModel, ReadyCheck]:
    """A model behind RPC; feed and fetch aliases from its client config when there is one."""
    feed, fetch = FEED_ALIAS, None
    client_dir = root / f"ocr_{name}_client"
    if client_dir.is_dir():
        conf = modelconf.load_config(client_dir)
        feed, fetch = conf.feed_var[0].alias_name, conf.fetch_var[0].alias_name
    model = RemoteModel(endpoints, feed_name=feed, fetch_name=fetch, name=f"{name} model server")
    where = ",".join(endpoints)
    return model, lambda: None if model.ready() else f"{name} model server {where} unreachable"


def remote_handler(kind: str, model_root: str | Path, det_endpoints: list[str],
                   rec_endpoints: list[str], options: OcrOptions = OcrOptions()) -> _Handler:
    """Standard mode: det and/or rec on model servers; the dictionary is read locally."""
    root = Path(model_root)
    det = rec = None
    checks = []
    if det_endpoints:
        det, check = _remote("det", det_endpoints, root)
        checks.append(check)
    if rec_endpoints:
        rec, check = _remote("rec", rec_endpoints, root)
        checks.append(check)
    return build_handler(kind, det, rec, root / "ocr_rec_model", options, ready_checks=checks)
