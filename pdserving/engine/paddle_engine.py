"""Paddle Inference predictors: the only module that imports paddle.

A Paddle predictor is not thread-safe, so ``PaddleEngine`` keeps a pool of them (clones that share
the weights) and lends one to each call. The pool size is how many calls run at once; each
predictor uses ``threads`` math threads.
"""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pdserving.engine import GpuUnavailable

# (model file, params file) pairs looked for in a model folder, most common first.
MODEL_FILE_PAIRS = [
    ("inference.pdmodel", "inference.pdiparams"),
    ("inference.json", "inference.pdiparams"),
    ("model.pdmodel", "model.pdiparams"),
    ("model.json", "model.pdiparams"),
    ("__model__", "__params__"),
]


class ModelNotFound(FileNotFoundError):
    """The folder holds no Paddle inference model."""


def find_model_files(dirname: str | os.PathLike, model_filename: str | None = None,
                     params_filename: str | None = None) -> tuple[Path, Path]:
    """The model and params files of an inference model folder (explicit names win)."""
    d = Path(dirname)
    if not d.is_dir():
        raise ModelNotFound(f"{d}: not a folder")
    pairs = [(model_filename, params_filename)] if model_filename else MODEL_FILE_PAIRS
    for model, params in pairs:
        if (d / model).is_file():
            params = params or _guess_params(d, model)
            if params and (d / params).is_file():
                return d / model, d / params
    raise ModelNotFound(
        f"{d}: no Paddle inference model here (looked for "
        + ", ".join(f"{m}+{p}" for m, p in pairs) + ")")


def _guess_params(d: Path, model: str) -> str | None:
    stem = model.rsplit(".", 1)[0]
    for cand in (stem + ".pdiparams", "__params__", "params"):
        if (d / cand).is_file():
            return cand
    return None


def cuda_available() -> bool:
    import paddle

    return paddle.device.is_compiled_with_cuda()


@dataclass(frozen=True)
class EngineOptions:
    """How predictors are built. ``gpu_id=None`` means CPU."""

    gpu_id: int | None = None
    threads: int = 1          # CPU math threads per predictor
    instances: int = 1        # predictors in the pool = calls that run at once
    mkldnn: bool = True       # oneDNN kernels on CPU
    ir_optim: bool = True
    mem_optim: bool = True
    mkldnn_cache: int = 10    # oneDNN shape cache entries (bounded: det sees many shapes)
    gpu_mem_mb: int = 500


class PaddleEngine:
    """A pool of Paddle predictors for one model; callable as ``batch -> first output``."""

    def __init__(self, model_dir: str | os.PathLike, options: EngineOptions = EngineOptions(),
                 model_filename: str | None = None, params_filename: str | None = None):
        if options.gpu_id is not None and not cuda_available():
            raise GpuUnavailable()
        from paddle import inference

        model_file, params_file = find_model_files(model_dir, model_filename, params_filename)
        config = inference.Config(str(model_file), str(params_file))
        config.disable_glog_info()
        config.switch_ir_optim(options.ir_optim)
        if options.mem_optim and model_file.suffix != ".json":
            # Paddle 3.3's memory_optimize_pass breaks predictor creation for PIR (.json) programs.
            config.enable_memory_optim()
        if options.gpu_id is None:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(options.threads)
            if options.mkldnn:
                config.enable_mkldnn()
                config.set_mkldnn_cache_capacity(options.mkldnn_cache)
        else:
            config.enable_use_gpu(options.gpu_mem_mb, options.gpu_id)
        first = inference.create_predictor(config)
        self.options = options
        self.model_dir = Path(model_dir)
        self.input_names: list[str] = list(first.get_input_names())
        self.output_names: list[str] = list(first.get_output_names())
        self._all = [first] + [first.clone() for _ in range(options.instances - 1)]
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        for p in self._all:
            self._pool.put(p)

    def run(self, feeds: dict[str, np.ndarray],
            fetch: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch: feeds by input name; returns the fetched outputs (all by default)."""
        predictor = self._pool.get()
        try:
            return self._run_on(predictor, feeds, fetch)
        finally:
            self._pool.put(predictor)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run({self.input_names[0]: batch}, self.output_names[:1])[self.output_names[0]]

    def warmup(self, feeds: dict[str, np.ndarray]) -> None:
        """Run every predictor once so the first real request does not pay for set-up."""
        for p in self._all:
            self._run_on(p, feeds, None)

    def _run_on(self, predictor, feeds: dict[str, np.ndarray],
                fetch: Iterable[str] | None) -> dict[str, np.ndarray]:
        for name, value in feeds.items():
            predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(value))
        predictor.run()
        names = list(fetch) if fetch else self.output_names
        return {n: predictor.get_output_handle(n).copy_to_cpu() for n in names}
