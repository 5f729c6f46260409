"""The engine interface: what the OCR pipeline needs from a model, wherever it runs.

A model is a callable ``ndarray -> ndarray`` (one input batch in, one output batch out), with
``run(feeds, fetch) -> {name: ndarray}`` for the model server. OpenVINO (``openvino_engine``, the
CPU default), Paddle Inference in worker processes (``paddle_engine``, ``process_pool``; the GPU
engine) and a model behind RPC (``pdserving.rpc.client.RemoteModel``) all satisfy it, so the
pipeline and the web service never know which one they hold. ``load.load_models`` picks.
"""

import argparse
import importlib.util
import os
import warnings
from dataclasses import dataclass, replace
from typing import Protocol, Sequence

import numpy as np

ENGINES = ("openvino", "paddle")
# fp32 everywhere; bf16 is OpenVINO's (CPUs with BF16 units), fp16 Paddle's on a GPU.
PRECISIONS = ("fp32", "fp16", "bf16")
GPU_START_TIMEOUT_S = 900.0  # a model server's first start on a GPU (TensorRT builds engines)


def import_paddle():
    """``paddle``, imported without the warnings it prints at import on a CLI's stderr: a missing
    ccache, and on the GPU build "CUDA device is not set properly" on every GPU-less machine,
    including that build's ``cpu`` runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import paddle
    return paddle


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
    """How models are run. No ``gpu_ids`` means CPU.

    ``instances`` is how many calls of one model run at once: OpenVINO streams in this process,
    or Paddle worker processes (Paddle keeps the GIL while it predicts); ``threads`` the math
    threads of each. ``None`` means the engine's own default (``sized``). On GPUs, Paddle's
    workers take the listed GPUs in turn (``for_worker``).
    """

    engine: str = "openvino"
    gpu_ids: tuple[int, ...] = ()
    threads: int | None = None
    instances: int | None = None
    precision: str = "fp32"   # bf16: OpenVINO on CPUs with BF16 units (the same text, boxes may
    #                           move a few px); fp16: Paddle on a GPU (TensorRT or mixed precision)
    mkldnn: bool = True       # Paddle: oneDNN kernels on CPU
    ir_optim: bool = True     # Paddle: IR graph optimisation
    mem_optim: bool = True    # Paddle: memory reuse
    mkldnn_cache: int = 1     # Paddle: oneDNN shape cache entries (more cost memory, no speed)
    gpu_mem_mb: int = 500     # Paddle: initial GPU memory pool of each worker
    use_trt: bool = False     # Paddle on a GPU: TensorRT subgraphs (shape ranges: trt_shapes)

    @property
    def start_timeout(self) -> float:
        """How long a model server running on these options may take to start: minutes on a
        GPU, where TensorRT builds its engines at first start."""
        return GPU_START_TIMEOUT_S if self.gpu_ids else 60.0

    @property
    def gpu_id(self) -> int | None:
        """The (first) GPU, or None on the CPU."""
        return self.gpu_ids[0] if self.gpu_ids else None

    def sized(self) -> "EngineOptions":
        """``instances`` and ``threads`` filled in for this machine.

        OpenVINO: one stream on every core. Measured on 2 cores against a stream per core: as
        many images/s under load, a lone image 25-40% faster (det on both cores), and one set of
        per-shape buffers instead of two (~30% less memory). Paddle: one worker process per
        core, one thread each (its threads scale worse than its processes); on GPUs one worker
        per GPU, since each worker holds a CUDA context (0.3-0.6 GB) and, without MPS, workers
        on one GPU only take turns.
        """
        cores = len(os.sched_getaffinity(0))
        if self.engine == "openvino":
            instances = self.instances or 1
            return replace(self, instances=instances,
                           threads=self.threads or max(1, cores // instances))
        per_device = len(self.gpu_ids) if self.gpu_ids else cores
        return replace(self, instances=self.instances or per_device, threads=self.threads or 1)

    def for_worker(self, index: int) -> "EngineOptions":
        """The options of Paddle worker ``index``: one call at a time, on its GPU in turn."""
        gpu_ids = (self.gpu_ids[index % len(self.gpu_ids)],) if self.gpu_ids else ()
        return replace(self, instances=1, gpu_ids=gpu_ids)


def engine_options(engine: str | None = None, gpu_ids: Sequence[int] = (),
                   **settings) -> EngineOptions:
    """Options on ``gpu_ids`` (none: the CPU), however they were given (flags, a config file,
    arguments): with no ``engine`` named, ``default_engine(gpu_ids)``."""
    gpu_ids = tuple(gpu_ids)
    return EngineOptions(engine=engine or default_engine(gpu_ids), gpu_ids=gpu_ids, **settings)


def default_engine(gpu_ids: Sequence[int]) -> str:
    """The engine when none is asked: OpenVINO on the CPU where it is installed (about twice as
    fast), else Paddle; Paddle on a GPU (OpenVINO runs on the CPU only). The GPU install has
    no OpenVINO, so its ``cpu`` mode is Paddle without a notice."""
    if gpu_ids or importlib.util.find_spec("openvino") is None:
        return "paddle"
    return "openvino"


class EngineError(RuntimeError):
    """A start-up problem the user can fix; the message is one line."""


class GpuUnavailable(EngineError):
    """Raised when a GPU is asked for and this Paddle build or this machine has none."""


def parse_gpu_ids(text: str) -> tuple[int, ...]:
    """``"0,1"`` -> ``(0, 1)``; ``""`` -> ``()`` (the CPU)."""
    try:
        return tuple(int(i) for i in text.split(",") if i.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"GPU ids are numbers separated by commas, not "
                                         f"{text!r}") from None


def _precision(text: str) -> str:
    return {"f32": "fp32"}.get(text, text)  # f32: the earlier name, still accepted


def add_engine_flags(parser) -> None:
    """The engine flags, the same on every script and on the model server (its Paddle Serving
    names: ``--cpu_math_thread_num``, ``--use_mkl``, ``--ir_optim``, ``--mem_optim_off``)."""
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="openvino (the CPU default: about twice as fast) or paddle (the GPU "
                             "engine)")
    parser.add_argument("--precision", type=_precision, choices=PRECISIONS, default="fp32",
                        help="bf16: OpenVINO, faster where the CPU has BF16 units (the same text, "
                             "boxes may move by a few pixels); fp16: Paddle on a GPU")
    parser.add_argument("--use_trt", action="store_true",
                        help="GPU: run the models through TensorRT (dynamic shape ranges are "
                             "collected into the model folder on first use)")
    parser.add_argument("--gpu_mem", type=int, default=EngineOptions.gpu_mem_mb,
                        help="GPU: initial memory pool of each model worker, MB")
    parser.add_argument("--instances", type=int, default=None,
                        help="model calls at once: OpenVINO streams (default 1), or Paddle worker "
                             "processes (default: one per core, at most --thread on a model "
                             "server; one per GPU)")
    parser.add_argument("--threads", "--cpu_math_thread_num", type=int, default=None,
                        help="math threads per model call (default: OpenVINO all cores, Paddle 1)")
    # On by default, unlike Paddle Serving: Paddle 3 runs det ~8x slower on CPU without them.
    parser.add_argument("--ir_optim", action=argparse.BooleanOptionalAction, default=True,
                        help="Paddle IR graph optimisation")
    parser.add_argument("--use_mkl", action=argparse.BooleanOptionalAction, default=True,
                        help="Paddle: oneDNN (MKL-DNN) kernels on CPU")
    parser.add_argument("--mem_optim_off", action="store_true",
                        help="Paddle: no memory reuse optimisation")


def options_from_flags(args: argparse.Namespace, gpu_ids: Sequence[int]) -> EngineOptions:
    """The options the flags of ``add_engine_flags`` ask for, on ``gpu_ids``."""
    return engine_options(args.engine, gpu_ids, threads=args.threads, instances=args.instances,
                          precision=args.precision, gpu_mem_mb=args.gpu_mem, use_trt=args.use_trt,
                          mkldnn=args.use_mkl, ir_optim=args.ir_optim,
                          mem_optim=not args.mem_optim_off)


def engine_flags(options: EngineOptions) -> list[str]:
    """``options`` (sized) as ``pdserving.serve`` flags: how a service starts its own model
    server with its own engine settings."""
    flags = ["--engine", options.engine, "--precision", options.precision,
             "--instances", str(options.instances),
             "--cpu_math_thread_num", str(options.threads)]
    if options.gpu_ids:
        flags += ["--gpu_ids", ",".join(map(str, options.gpu_ids)),
                  "--gpu_mem", str(options.gpu_mem_mb)]
    if options.use_trt:
        flags.append("--use_trt")
    switches = {"--no-use_mkl": options.mkldnn, "--no-ir_optim": options.ir_optim,
                "--mem_optim_off": options.mem_optim}
    return flags + [flag for flag, on in switches.items() if not on]


def check_options(options: EngineOptions) -> None:
    """Refuse engine/device combinations that cannot work, before anything loads: one line
    each, naming the flag."""
    if options.engine not in ENGINES:
        raise EngineError(f"unknown engine {options.engine!r}: expected {' or '.join(ENGINES)}")
    if options.precision not in PRECISIONS:
        raise EngineError(f"unknown precision {options.precision!r}: expected "
                          f"{', '.join(PRECISIONS)}")
    if options.gpu_ids and options.engine == "openvino":
        raise EngineError("--engine openvino runs on the CPU only; on a GPU use --engine paddle "
                          "(the default with gpu)")
    if options.precision == "bf16" and options.engine != "openvino":
        raise EngineError("--precision bf16 is an OpenVINO setting on the CPU; Paddle runs fp32, "
                          "or fp16 on a GPU")
    if options.precision == "fp16" and not options.gpu_ids:
        raise EngineError("--precision fp16 is for a GPU; on the CPU use fp32, or bf16 with "
                          "OpenVINO")
    if options.use_trt and not options.gpu_ids:
        raise EngineError("--use_trt needs a GPU (TensorRT runs on NVIDIA GPUs): run with gpu, "
                          "or drop --use_trt")
    if options.gpu_ids:
        from pdserving.engine.paddle_engine import check_gpu

        check_gpu(options)


__all__ = ["ENGINES", "GPU_START_TIMEOUT_S", "PRECISIONS", "Engine", "EngineError",
           "EngineOptions", "GpuUnavailable", "Model", "add_engine_flags", "check_options",
           "default_engine", "engine_flags", "engine_options", "import_paddle",
           "options_from_flags", "parse_gpu_ids"]
