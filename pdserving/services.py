"""The OCR, det-only and rec-only services: what each answers, and how its steps are built.

A handler turns decoded images into the ``result`` object (docs/design.md §2.2) through an
``OcrPipeline``. It does not know whether the pipeline's models run in this process (fast mode,
``local_handler``), behind RPC (standard mode, ``remote_handler``) or on Ray replicas
(``pdserving.ray_app``): ``build_steps`` makes the steps from the models in every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Callable, ClassVar, Mapping, NamedTuple, Sequence, get_type_hints

import numpy as np
from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from pdserving import metrics, modelconf
from pdserving.engine import EngineOptions, Model, engine_options
from pdserving.engine.load import load_models
from pdserving.engine.model_folder import ModelFolder
from pdserving.ops import resize
from pdserving.package import FEED_ALIAS, ensure_model, pipeline_folders
from pdserving.pipeline import DetStep, OcrOptions, OcrPipeline, RecStep
from pdserving.rpc.client import RemoteModel
from pdserving.tls import ClientTls

ReadyCheck = Callable[[], "str | None"]

# The ``result`` objects, as types: the OpenAPI document (pdserving.web.openapi) is generated from
# them, and the tests check every answer against it.
Point = Annotated[list[int], Field(min_length=2, max_length=2, description="[x, y]")]
Box = Annotated[list[Point], Field(min_length=4, max_length=4, description=(
    "A text line's corners in the original image's pixels: top-left, top-right, "
    "bottom-right, bottom-left."))]
Texts = Annotated[list[str], Field(description="The text lines.")]
Scores = Annotated[list[float], Field(description="Each line's recognition score, 0 to 1.")]
Boxes = Annotated[list[Box], Field(description="The text boxes, in reading order.")]


@with_config(ConfigDict(extra="forbid"))
class OcrResult(TypedDict, total=False):
    """One image's text lines in reading order: the outputs asked for in `fetch`, aligned."""

    res: Texts
    dt_boxes: Boxes
    rec_scores: Scores


@with_config(ConfigDict(extra="forbid"))
class DetResult(TypedDict):
    """One image's text boxes."""

    dt_boxes: Boxes


@with_config(ConfigDict(extra="forbid"))
class RecResult(TypedDict, total=False):
    """One text line per feed image, in feed order: the outputs asked for in `fetch`."""

    res: Texts
    rec_scores: Scores


def per_image(one: type) -> type:
    """The result type for several images (``_shape``): each output a list, one per image."""
    fields = {name: list[tp] for name, tp in get_type_hints(one, include_extras=True).items()}
    several = TypedDict(f"{one.__name__}PerImage", fields, total=one.__total__)  # type: ignore
    several.__doc__ = "Several images: each output a list with one entry per image, in order."
    several.__pydantic_config__ = one.__pydantic_config__
    return several


def _shape(per_image: list[dict], fetch: Sequence[str]) -> dict:
    """One image: the flat form; several: each output a list with one entry per image."""
    if len(per_image) == 1:
        return per_image[0]
    return {name: [r[name] for r in per_image] for name in fetch}


def boxes_json(boxes) -> list:
    """Boxes as JSON: each point's pixels rounded to integers."""
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
    result_type: ClassVar[object] = OcrResult | per_image(OcrResult)

    def __call__(self, images: list[np.ndarray], fetch: list[str]) -> dict:
        per_image = []
        for img in images:
            lines = self.pipeline(img)
            out = {"res": [ln.text for ln in lines],
                   "dt_boxes": boxes_json([ln.box for ln in lines]),
                   "rec_scores": [round(float(ln.score), 6) for ln in lines]}
            per_image.append({k: out[k] for k in fetch})
        return _shape(per_image, fetch)


@dataclass
class DetHandler(_Handler):
    """Text detection only: boxes in original-image pixels, tl,tr,br,bl, in reading order.

    ``fetch: ["res"]``, which the original client sends to every service, also gets the boxes.
    """

    pipeline: OcrPipeline
    name: str = "det"
    outputs: tuple[str, ...] = ("dt_boxes", "res")
    result_type: ClassVar[object] = DetResult | per_image(DetResult)

    def __call__(self, images: list[np.ndarray], fetch: list[str]) -> dict:
        per_image = [{"dt_boxes": boxes_json(self.pipeline.detect(img))} for img in images]
        return _shape(per_image, ["dt_boxes"])


@dataclass
class RecHandler(_Handler):
    """Recognition only: every feed image is one text line; one string per image, in order."""

    pipeline: OcrPipeline
    name: str = "rec"
    outputs: tuple[str, ...] = ("res", "rec_scores")
    result_type: ClassVar[object] = RecResult

    def __call__(self, images: list[np.ndarray], fetch: list[str]) -> dict:
        results = self.pipeline.recognize(images)
        out = {"res": [r.text for r in results],
               "rec_scores": [round(float(r.score), 6) for r in results]}
        return {k: out[k] for k in fetch}


@dataclass(frozen=True)
class Kind:
    """What a kind of service ("ocr", "det", "rec") runs and answers."""

    models: tuple[str, ...]   # the models it runs, by name ("det", "rec")
    own: str                  # standard mode: the model on the service's own model server
    handler: Callable[[OcrPipeline], _Handler]


KINDS: dict[str, Kind] = {
    "ocr": Kind(("det", "rec"), "rec", OcrHandler),
    "det": Kind(("det",), "det", DetHandler),
    "rec": Kind(("rec",), "rec", RecHandler),
}


def model_names(kind: str, use_cls: bool) -> list[str]:
    """The models service ``kind`` runs: its own, and cls beside rec with ``use_cls``."""
    names = list(KINDS[kind].models)
    return names + ["cls"] if use_cls and "rec" in names else names


class Steps(NamedTuple):
    """The pipeline's two steps; None for a model the service does not run."""

    det: DetStep | None
    rec: RecStep | None


def pipeline_options(folders: Mapping[str, ModelFolder],
                     options: OcrOptions = OcrOptions()) -> OcrOptions:
    """``options`` with the settings the det and rec folders record (docs/design.md §5.2): the
    det resize rule and thresholds, the rec input height and floor width."""
    changes: dict = {}
    if "det" in folders:
        changes["det"] = folders["det"].det_settings
    if "rec" in folders:
        rec = folders["rec"]
        changes["rec_height"] = rec.rec_height or options.rec_height
        changes["rec_min_width"] = rec.rec_min_width or options.rec_min_width
    return replace(options, **changes)


def build_steps(models: Mapping[str, Model], folders: Mapping[str, ModelFolder],
                options: OcrOptions = OcrOptions()) -> Steps:
    """The pipeline's steps of the models given ("det"; "rec", with "cls" as its classifier),
    each model call timed in the metrics, set up as their ``folders`` say: det thresholds,
    rec input shape, dictionary and output form."""
    options = pipeline_options(folders, options)
    det = rec = None
    if "det" in models:
        det = DetStep(metrics.timed(models["det"], "det"), options.det)
    if "rec" in models:
        cls = models.get("cls")
        rec_folder = folders["rec"]
        rec = RecStep(metrics.timed(models["rec"], "rec"), rec_folder.charset(), options,
                      classifier=metrics.timed(cls, "cls") if cls else None,
                      num_classes=rec_folder.best_path_classes)
    return Steps(det, rec)


def build_handler(kind: str, models: Mapping[str, Model], folders: Mapping[str, ModelFolder],
                  options: OcrOptions = OcrOptions()) -> _Handler:
    """The handler of service ``kind`` ("ocr", "det" or "rec") on ``models``."""
    steps = build_steps(models, folders, options)
    metrics.note_families(folders)
    return KINDS[kind].handler(OcrPipeline(*steps, pipeline_options(folders, options)))


def local_handler(kind: str, model_root: str | Path = ".",
                  engine: EngineOptions | None = None,
                  options: OcrOptions = OcrOptions(),
                  model_dirs: Mapping[str, Path] = MappingProxyType({}),
                  family: str | None = None) -> _Handler:
    """Fast mode: the models this service needs, in this process (OpenVINO) or in
    ``engine.instances`` worker processes (Paddle), loaded and warmed up at the shapes the
    pipeline sends. A model's folder is ``model_dirs[name]`` if given, else
    ``model_root/ocr_<name>_model``, written from ``family`` if missing (``ensure_model``).
    ``handler.close()`` stops them."""
    engine = engine or engine_options()
    root = Path(model_root)
    dirs = {n: model_dirs.get(n) or pipeline_folders(n, root)[0]
            for n in model_names(kind, options.use_cls)}
    folders = {n: ModelFolder.read(ensure_model(d, family, engine.engine))
               for n, d in dirs.items()}
    loaded = load_models(folders, engine,
                         {n: pipeline_warmup(n, f, options) for n, f in folders.items()})
    metrics.note_engines(loaded.engines)
    try:
        handler = build_handler(kind, loaded.models, folders, options)
    except Exception:
        loaded.close()
        raise
    handler.closers.append(loaded.close)
    return handler


def pipeline_warmup(name: str, folder: ModelFolder, options: OcrOptions) -> list[dict]:
    """The inputs the pipeline will send model ``name``, run once at start. The folder's own
    guess does for det and rec; the cls model's input is dynamic in its files but always
    48x192 here (one crop, or a batch of them)."""
    if name == "cls":
        return [folder.zeros(n, *resize.CLS_SIZE) for n in (1, options.rec_batch_size)]
    return folder.warmup_feeds(options.rec_batch_size, options.rec_min_width)


def _remote(name: str, endpoints: list[str], root: Path, tls: ClientTls | None = None,
            api_key: str | None = None) -> tuple[RemoteModel, ReadyCheck]:
    """A model behind RPC; feed and fetch aliases from its client config when there is one."""
    feed, fetch = FEED_ALIAS, None
    client_dir = pipeline_folders(name, root)[1]
    if client_dir.is_dir():
        conf = modelconf.load_config(client_dir)
        feed, fetch = conf.feed_var[0].alias_name, conf.fetch_var[0].alias_name
    model = RemoteModel(endpoints, feed_name=feed, fetch_name=fetch, name=f"{name} model server",
                        tls=tls, api_key=api_key)
    where = ",".join(endpoints)

    def check() -> str | None:
        problem = model.connection.problem()
        return problem and f"{name} model server {where} {problem}"
    return model, check


def remote_handler(kind: str, model_root: str | Path, endpoints: dict[str, list[str]],
                   options: OcrOptions = OcrOptions(), family: str | None = None,
                   engine: str | None = None,
                   tls: dict[str, ClientTls | None] | None = None,
                   api_key: str | None = None) -> _Handler:
    """Standard mode: each model ``kind`` needs on the model servers ``endpoints[name]``
    (spoken to with ``tls[name]``, if any; called with ``api_key``, by default
    ``PDSERVING_API_KEY``); their settings and the dictionary are read from the
    local folders (written from ``family`` if missing: they must be those the model servers
    run)."""
    root = Path(model_root)
    folders = {name: ModelFolder.read(ensure_model(pipeline_folders(name, root)[0], family,
                                                   engine))
               for name in KINDS[kind].models}
    remote = {name: _remote(name, endpoints[name], root, (tls or {}).get(name), api_key)
              for name in KINDS[kind].models}
    models = {name: model for name, (model, _) in remote.items()}
    handler = build_handler(kind, models, folders, options)
    handler.ready_checks.extend(check for _, check in remote.values())
    return handler
