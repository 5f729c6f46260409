"""Which engine runs which model: OpenVINO in this process, or Paddle in worker processes.

``load_models`` is the one place that decides. A Paddle model OpenVINO cannot read (a PIR
program, an op its Paddle frontend lacks) runs on Paddle instead, with a one-line notice, so a
converted model never stops a service from starting. An ONNX model runs on OpenVINO only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pdserving.engine import EngineError, EngineOptions, Model, check_options
from pdserving.engine.model_folder import ModelFolder
from pdserving.modelconf import by_name

log = logging.getLogger(__name__)

Feeds = dict[str, np.ndarray]


@dataclass
class LoadedModels:
    """Models by name, and how to stop them (worker processes)."""

    models: dict[str, Model]
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def engines(self) -> dict[str, str]:
        """The engine each model runs on (``openvino``, ``paddle``)."""
        return {name: model.engine for name, model in self.models.items()}

    def close(self) -> None:
        for close in self.closers:
            close()


def load_models(folders: dict[str, ModelFolder], options: EngineOptions,
                warmup: dict[str, list[Feeds]] | None = None) -> LoadedModels:
    """Load and warm up every model of ``folders`` on ``options.engine``."""
    check_options(options)
    check_formats(folders, options)
    options = options.sized()
    warmup = warmup or {}
    loaded = LoadedModels({})
    on_paddle = dict(folders)
    if options.engine == "openvino":
        from pdserving.engine.openvino_engine import ModelUnreadable, OpenVINOEngine

        for name, folder in folders.items():
            try:
                loaded.models[name] = OpenVINOEngine(folder, options, warmup.get(name, ()))
            except ModelUnreadable as e:
                if folder.is_onnx:
                    raise EngineError(f"{folder.path}: {e}") from None
                log.warning("notice: model %s (%s): %s; running it on Paddle instead",
                            name, folder.path, e)
                continue
            del on_paddle[name]
    if on_paddle:
        from pdserving.engine.paddle_engine import trt_shapes
        from pdserving.engine.process_pool import WorkerPool

        if options.use_trt:  # before the workers start: they read the ranges
            for name, folder in on_paddle.items():
                trt_shapes(folder, warmup.get(name, ()), folder.shape_extremes())

        pool = WorkerPool(on_paddle, options, workers=options.instances, warmup=warmup)
        loaded.closers.append(pool.close)
        loaded.models.update(pool.models)
    return loaded


def check_formats(folders: dict[str, ModelFolder], options: EngineOptions) -> None:
    """Refuse an ONNX model on Paddle, in one line that says why and what to run instead."""
    onnx = [f for f in folders.values() if f.is_onnx]
    if not onnx or options.engine == "openvino":
        return
    where = "CUDA" if options.gpu_ids else "Paddle"
    family = onnx[0].settings.family or "an ONNX model"
    raise EngineError(
        f"{onnx[0].path} holds {family} (ONNX), which only OpenVINO runs: there is no ONNX "
        f"engine on {where} yet. Write PP-OCRv4 folders: python -m pdserving.package "
        f"--get_model {onnx[0].name.removesuffix('_model')} --family PP-OCRv4_mobile "
        f"(or start with --family PP-OCRv4_mobile)")


@dataclass
class ServedModel:
    """One model folder loaded on its own, as the model server and the 2020 ``Debugger`` serve
    it: its engine, and its feed and fetch variables by alias and by real name."""

    folder: ModelFolder
    loaded: LoadedModels

    def __post_init__(self):
        self.model = self.loaded.models["model"]
        self.feeds = by_name(self.folder.feeds)
        self.fetches = by_name(self.folder.fetches)

    @property
    def engine(self) -> str:
        """The engine it runs on (after any fall-back to Paddle)."""
        return self.model.engine

    def close(self) -> None:
        self.loaded.close()


def load_model(model_dir: str | os.PathLike, options: EngineOptions) -> ServedModel:
    """The model in ``model_dir``, loaded and warmed up at its folder's usual shapes."""
    folder = ModelFolder.read(model_dir)
    return ServedModel(folder, load_models({"model": folder}, options,
                                           {"model": folder.warmup_feeds()}))
