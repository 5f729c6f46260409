"""The engine interface: what the OCR pipeline needs from a model, wherever it runs.

A model is a callable ``ndarray -> ndarray`` (one input batch in, one output batch out), with
``run(feeds, fetch) -> {name: ndarray}`` for the model server. OpenVINO (``openvino_engine``, the
CPU default), Paddle Inference in worker processes (``paddle_engine``, ``process_pool``; the GPU
engine) and a model behind RPC (``pdserving.rpc.client.RemoteModel``) all satisfy it, so the
pipeline and the web service never know which one they hold. ``load.load_models`` picks.
"""

import os
from dataclasses import dataclass, replace
from typing import Protocol, Sequence

import numpy as np

ENGINES = ("openvino", "paddle")
PRECISIONS = ("f32", "bf16")


class Model(Protocol):
    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class Engine:
    """What the engines share: ``run(feeds, fetch)`` by input and output names (the model
    server's call), and from it the pipeline's ``batch -> first output``."""

    engine: str               # "openvino" or "paddle"
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray],
            fetch: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        first = self.output_names[0]
        return self.run({self.input_names[0]: batch}, [first])[first]


@dataclass(frozen=True)
class EngineOptions:
    """How models are run. ``gpu_id=None`` means CPU.

    ``instances`` is how many calls of one model run at once: OpenVINO streams in this process,
    or Paddle worker processes (Paddle keeps the GIL while it predicts); ``threads`` the math
    threads of each. ``None`` means the engine's own default (``sized``).
    """

    engine: str = "openvino"
    gpu_id: int | None = None
    threads: int | None = None
    instances: int | None = None
    precision: str = "f32"    # OpenVINO CPU inference precision: f32, or bf16 (faster on CPUs
    #                           with AVX512-BF16/AMX; the same text, boxes may move a few px)
    mkldnn: bool = True       # Paddle: oneDNN kernels on CPU
    ir_optim: bool = True     # Paddle: IR graph optimisation
    mem_optim: bool = True    # Paddle: memory reuse
    mkldnn_cache: int = 1     # Paddle: oneDNN shape cache entries (more cost memory, no speed)
    gpu_mem_mb: int = 500     # Paddle: initial GPU memory pool

    def sized(self) -> "EngineOptions":
        """``instances`` and ``threads`` filled in for this machine.

        OpenVINO: one stream on every core. Measured on 2 cores against a stream per core: as
        many images/s under load, a lone image 25-40% faster (det on both cores), and one set of
        per-shape buffers instead of two (~30% less memory). Paddle: one worker process per
        core, one thread each (its threads scale worse than its processes).
        """
        cores = len(os.sched_getaffinity(0))
        if self.engine == "openvino":
            instances = self.instances or 1
            return replace(self, instances=instances,
                           threads=self.threads or max(1, cores // instances))
        return replace(self, instances=self.instances or cores, threads=self.threads or 1)


def default_engine(gpu_id: int | None) -> str:
    """The engine when none is asked: OpenVINO on the CPU (about twice as fast), Paddle on a
    GPU (OpenVINO runs on the CPU only)."""
    return "openvino" if gpu_id is None else "paddle"


class EngineError(RuntimeError):
    """A start-up problem the user can fix; the message is one line."""


class GpuUnavailable(EngineError):
    """Raised when GPU inference is asked of a Paddle build without CUDA."""

    def __init__(self) -> None:
        super().__init__(
            "GPU requested but this Paddle build has no CUDA support: install the GPU build with "
            "`pip install -r requirements-gpu.txt` (paddlepaddle-gpu), or run with `cpu`.")


def add_engine_flags(parser) -> None:
    """``--engine`` and ``--precision``, the same on every script and on the model server."""
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="openvino (the CPU default: about twice as fast) or paddle (the GPU "
                             "engine)")
    parser.add_argument("--precision", choices=PRECISIONS, default="f32",
                        help="OpenVINO: bf16 is faster where the CPU has BF16 units; the same "
                             "text, boxes may move by a few pixels")


def check_options(options: EngineOptions) -> None:
    """Refuse engine/device combinations that cannot work, before anything loads."""
    if options.engine not in ENGINES:
        raise EngineError(f"unknown engine {options.engine!r}: expected {' or '.join(ENGINES)}")
    if options.precision not in PRECISIONS:
        raise EngineError(f"unknown precision {options.precision!r}: expected "
                          f"{' or '.join(PRECISIONS)}")
    if options.precision != "f32" and options.engine != "openvino":
        raise EngineError(f"--precision {options.precision} is an OpenVINO setting; Paddle runs "
                          "f32")
    if options.gpu_id is not None and options.engine == "openvino":
        raise EngineError("--engine openvino runs on the CPU only; on a GPU use --engine paddle "
                          "(the default with gpu)")
    if options.gpu_id is not None:
        from pdserving.engine.paddle_engine import check_gpu

        check_gpu(options)


__all__ = ["ENGINES", "PRECISIONS", "Engine", "EngineError", "EngineOptions", "GpuUnavailable",
           "Model", "add_engine_flags", "check_options", "default_engine"]
