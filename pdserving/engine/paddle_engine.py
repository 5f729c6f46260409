"""Paddle Inference predictors: the only module that runs Paddle models.

A Paddle predictor is not thread-safe, so ``PaddleEngine`` keeps several (clones that share the
weights), each on its own thread, and hands each call to a free one; each predictor uses
``threads`` math threads. Paddle keeps the GIL while it predicts, so calls that should run side
by side go to worker processes (``process_pool``).
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from typing import Iterable, Sequence

import numpy as np

from pdserving.engine import Engine, EngineOptions, GpuUnavailable
from pdserving.engine.model_folder import ModelFolder


def cuda_available() -> bool:
    import paddle

    return paddle.device.is_compiled_with_cuda()


def check_gpu(options: EngineOptions) -> None:
    """Refuse at once a GPU asked of a Paddle build without CUDA (not inside every worker)."""
    if options.gpu_id is not None and not cuda_available():
        raise GpuUnavailable()


def predictor_config(folder: ModelFolder, options: EngineOptions):
    """The ``paddle.inference.Config`` for a model folder under ``options`` (sized): a pure
    function of the two, so what each option turns on can be checked without running it."""
    from paddle import inference

    config = inference.Config(str(folder.model_file), str(folder.params_file))
    config.disable_glog_info()
    config.switch_ir_optim(options.ir_optim)
    if options.mem_optim and folder.model_file.suffix != ".json":
        # Paddle 3.3's memory_optimize_pass breaks predictor creation for PIR (.json) programs.
        config.enable_memory_optim()
    # The new executor frees intermediate tensors after each run; the old one keeps every
    # one at the largest size seen (rec on a 4000 px line: 5 GB held for good).
    config.enable_new_executor(True)
    if options.gpu_id is None:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(options.threads)
        if options.mkldnn:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(options.mkldnn_cache)
        else:  # Paddle 3 turns oneDNN on by default
            config.disable_mkldnn()
    else:
        config.enable_use_gpu(options.gpu_mem_mb, options.gpu_id)
    return config


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
        from paddle import inference

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
