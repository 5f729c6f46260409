"""Paddle Inference predictors: the only module that runs Paddle models.

A Paddle predictor is not thread-safe, so ``PaddleEngine`` keeps several (clones that share the
weights), each on its own thread, and hands each call to a free one; each predictor uses
``threads`` math threads. Paddle keeps the GIL while it predicts, so calls that should run side
by side go to worker processes (``process_pool``).
"""

from __future__ import annotations

import enum
import functools
import os
import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from pdserving.engine import Engine, EngineError, EngineOptions, GpuUnavailable, import_paddle
from pdserving.engine.model_folder import ModelFolder


TRT_SHAPES = "trt_dynamic_shape.txt"  # TensorRT's shape ranges, collected into the model folder
TRT_WORKSPACE = 1 << 30
SELF_ATTENTION_FUSE = "self_attention_fuse_pass"


def cuda_available() -> bool:
    return import_paddle().device.is_compiled_with_cuda()


def cuda_device_count() -> int:
    return import_paddle().device.cuda.device_count()


def check_gpu(options: EngineOptions) -> None:
    """Refuse at once, in one line, GPUs this Paddle build or this machine does not have (not
    inside every worker, in Paddle's many-line words)."""
    if not options.gpu_ids:
        return
    if not cuda_available():
        raise GpuUnavailable(
            "GPU requested but this Paddle build has no CUDA support: install the GPU build "
            "(`make install-gpu`, or `pip install -r requirements-gpu.txt` in its own venv), or "
            "run with cpu")
    count = cuda_device_count()
    if count == 0:
        raise GpuUnavailable(
            "no CUDA device: this Paddle build has CUDA but sees no GPU (no NVIDIA driver, or "
            "CUDA_VISIBLE_DEVICES hides them); run with cpu")
    absent = [i for i in options.gpu_ids if not 0 <= i < count]
    if absent:
        raise GpuUnavailable(f"no CUDA device {absent[0]}: this machine has {count} "
                             f"(ids 0-{count - 1})")


@functools.cache
def cpu_has_avx512() -> bool:
    """Whether this CPU has AVX-512 (the ``flags`` of /proc/cpuinfo; True where unknown)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return True
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")),
                 None)
    return flags is None or "avx512f" in flags


class Precision(str, enum.Enum):
    """Paddle's ``PrecisionType`` by name, resolved when the Config is built."""

    FP32 = "Float32"
    FP16 = "Half"


class Call(NamedTuple):
    """One call on a ``paddle.inference.Config``: ``config.<name>(*args)``."""

    name: str
    args: tuple = ()


def config_calls(folder: ModelFolder, options: EngineOptions) -> list[Call]:
    """What the Config of ``folder`` under ``options`` (sized) is told, in order.

    A pure function, so tests see what a GPU request sets on a machine without one: Paddle's
    CPU build takes the GPU calls and reports none of them.
    """
    calls = [Call("disable_glog_info"), Call("switch_ir_optim", (options.ir_optim,))]
    if options.mem_optim and folder.model_file.suffix != ".json":
        # Paddle 3.3's memory_optimize_pass breaks predictor creation for PIR (.json) programs.
        calls.append(Call("enable_memory_optim"))
    if not options.gpu_ids:
        # The new executor frees intermediate tensors after each run; the old one keeps every
        # one at the largest size seen (rec on a 4000 px line: 5 GB held for good).
        calls += [Call("enable_new_executor", (True,)), Call("disable_gpu"),
                  Call("set_cpu_math_library_num_threads", (options.threads,))]
        if options.mkldnn:
            calls += [Call("enable_mkldnn"),
                      Call("set_mkldnn_cache_capacity", (options.mkldnn_cache,))]
        else:  # Paddle 3 turns oneDNN on by default
            calls.append(Call("disable_mkldnn"))
        if not cpu_has_avx512():
            # Paddle 2.6 (the GPU build, run on the CPU) dies of SIGILL in this oneDNN fusion
            # pass on the rec model where the CPU has no AVX-512 (seen on AMD EPYC); without it
            # the model runs its attention unfused, with the same answers.
            calls.append(Call("delete_pass", (SELF_ATTENTION_FUSE,)))
        return calls
    # On a GPU, PaddleOCR's own predictor settings: its memory pool, and TensorRT subgraphs with
    # shape ranges collected beforehand. fp16 is TensorRT's with TensorRT, else Paddle's mixed
    # precision (fp16 kernels where they are safe).
    half = Precision.FP16 if options.precision == "fp16" else Precision.FP32
    calls.append(Call("enable_use_gpu", (options.gpu_mem_mb, options.gpu_id,
                                         Precision.FP32 if options.use_trt else half)))
    if options.use_trt:
        # PaddleOCR's values: workspace 1 GiB, max batch 10, subgraphs of 15 ops or more (the
        # smaller ones stay on Paddle's kernels); then precision, use_static (no engine cache
        # written into the model folder), use_calib_mode (int8 only).
        calls += [Call("enable_tensorrt_engine", (TRT_WORKSPACE, 10, 15, half, False, False)),
                  Call("enable_tuned_tensorrt_dynamic_shape",
                       (str(folder.path / TRT_SHAPES), True))]
    return calls


def predictor_config(folder: ModelFolder, options: EngineOptions):
    """The ``paddle.inference.Config`` of ``config_calls(folder, options)``."""
    inference = import_paddle().inference
    config = inference.Config(str(folder.model_file), str(folder.params_file))
    for call in config_calls(folder, options):
        args = [getattr(inference.PrecisionType, a.value) if isinstance(a, Precision) else a
                for a in call.args]
        getattr(config, call.name)(*args)
    return config


def trt_shapes(folder: ModelFolder, usual: Sequence[dict[str, np.ndarray]],
               extremes: Sequence[dict[str, np.ndarray]] = ()) -> Path:
    """The TensorRT shape ranges of every tensor of ``folder``'s model, collected once on the
    CPU and kept in the folder: min and max over ``usual`` (what the services send) and
    ``extremes``; the usual shapes run twice so that they are TensorRT's optimal ones (Paddle
    takes the most frequent shape).

    Collecting runs the unoptimised graph, on any device alike, so a GPU-less machine can
    prepare a folder; shapes outside the ranges still run (TensorRT builds at run time).
    """
    path = folder.path / TRT_SHAPES
    if path.is_file():
        return path
    inference = import_paddle().inference
    config = inference.Config(str(folder.model_file), str(folder.params_file))
    config.disable_glog_info()
    config.disable_gpu()
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    config.collect_shape_range_info(str(partial))
    predictor = inference.create_predictor(config)
    for feed in [*usual, *usual, *extremes]:
        for name, value in feed.items():
            predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(value))
        predictor.run()
    del predictor  # the ranges are written when the predictor goes
    try:
        os.replace(partial, path)  # whole, even with two services preparing the folder at once
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise EngineError(f"cannot keep TensorRT's shape ranges in {path}: {e}") from None
    return path


class PaddleEngine(Engine):
    """A pool of Paddle predictors for one model; callable as ``batch -> first output``.

    ``warmup`` (a list of feeds) runs once on every predictor before the constructor returns, so
    no request pays for oneDNN's set-up.

    Each predictor lives on its own worker thread for the engine's lifetime: oneDNN keeps
    per-thread state, and a predictor run from a new thread that reuses a dead thread's id fails
    ("could not execute a primitive"). Callers from any thread hand their batch to a free worker.
    """

    engine = "paddle"

    def __init__(self, folder: ModelFolder | str | os.PathLike,
                 options: EngineOptions = EngineOptions(engine="paddle"),
                 warmup: Sequence[dict[str, np.ndarray]] = ()):
        check_gpu(options)
        inference = import_paddle().inference
        folder = ModelFolder.of(folder)
        options = options.sized()
        first = inference.create_predictor(predictor_config(folder, options))
        self.options = options
        self.folder = folder
        self.input_names: list[str] = list(first.get_input_names())
        self.output_names: list[str] = list(first.get_output_names())
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        predictors = [first] + [first.clone() for _ in range(options.instances - 1)]
        warmed = [Future() for _ in predictors]
        for i, (p, done) in enumerate(zip(predictors, warmed)):
            threading.Thread(target=self._work, args=(p, warmup, done), daemon=True,
                             name=f"paddle-{folder.name}-{i}").start()
        for done in warmed:
            done.result()

    def run(self, feeds: dict[str, np.ndarray],
            fetch: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch: feeds by input name; returns the fetched outputs (all by default)."""
        job: Future = Future()
        self._jobs.put((feeds, fetch, job))
        return job.result()

    def _work(self, predictor, warmup: Sequence[dict[str, np.ndarray]], warmed: Future) -> None:
        """A worker: warm its predictor up (so no request pays for that), then serve jobs."""
        try:
            for feeds in warmup:
                self._run_on(predictor, feeds, None)
            warmed.set_result(None)
        except BaseException as e:
            warmed.set_exception(e)
            return
        while True:
            feeds, fetch, job = self._jobs.get()
            try:
                job.set_result(self._run_on(predictor, feeds, fetch))
            except BaseException as e:  # handed to the caller, who re-raises it
                job.set_exception(e)

    def _run_on(self, predictor, feeds: dict[str, np.ndarray],
                fetch: Iterable[str] | None) -> dict[str, np.ndarray]:
        for name, value in feeds.items():
            predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(value))
        predictor.run()
        names = list(fetch) if fetch else self.output_names
        return {n: predictor.get_output_handle(n).copy_to_cpu() for n in names}
