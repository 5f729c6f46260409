"""OpenVINO on the CPU: the only module that imports openvino.

OpenVINO's Paddle frontend reads the very ``inference.pdmodel`` + ``.pdiparams`` that Paddle
Inference runs (no conversion step) and runs them about twice as fast on this kind of CPU; its
ONNX frontend reads the PP-OCRv6 families' ``inference.onnx``. It releases the GIL while it
infers, so one process serves concurrent calls on several cores: the compiled model has
``instances`` streams, and each call borrows one of as many infer requests.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from typing import Sequence

import numpy as np

from pdserving.engine import Engine, EngineError, EngineOptions
from pdserving.engine.model_folder import BEST_PATH, ModelFolder
from pdserving.errors import BadRequest

_core = None


def _openvino():
    """``openvino``, imported without its telemetry: on import, openvino sends a usage event to
    Google Analytics (openvino_telemetry) unless the user opted out in ~/intel. The kit makes no
    connection but to its own peers, so ``openvino_telemetry`` is made unimportable first, and
    openvino falls back to its own no-op stub (its ImportError path)."""
    sys.modules.setdefault("openvino_telemetry", None)
    import openvino
    return openvino


class ModelUnreadable(EngineError):
    """OpenVINO cannot read or compile this model (the caller falls back to Paddle)."""


def core():
    """One ``openvino.Core`` per process (it holds the plugin and its thread pools)."""
    global _core
    if _core is None:
        try:
            openvino = _openvino()
        except ImportError:
            raise ModelUnreadable("openvino is not installed (pip install -r requirements.txt)")
        _core = openvino.Core()
    return _core


class OpenVINOEngine(Engine):
    """One model compiled for the CPU; callable as ``batch -> first output``, thread-safe.

    ``options.instances`` streams of ``options.threads`` threads each. ``warmup`` (a list of
    feeds) runs on every infer request before the constructor returns: a shape OpenVINO has not
    seen costs set-up on its first call. A text-line model (rec) then also runs its widest line
    (``shape_extremes``): OpenVINO keeps its buffers at the largest input it has run, and the
    first request larger than any before paid for growing them (a (4, 3, 48, 774) batch: 71
    ms on its first call after the usual warm-up, 57 after this one, 41 after that). A page
    model's largest input is among its usual ones.
    """

    engine = "openvino"

    def __init__(self, folder: ModelFolder | str | os.PathLike,
                 options: EngineOptions = EngineOptions(),
                 warmup: Sequence[dict[str, np.ndarray]] = ()):
        folder = ModelFolder.of(folder)
        ov = core()
        if folder.model_file.suffix == ".json":
            # Asked anyway, OpenVINO tries every frontend on it and prints their parse errors.
            raise ModelUnreadable(f"OpenVINO reads .pdmodel programs, not Paddle 3 PIR "
                                  f"({folder.model_file.name})")
        options = options.sized()
        streams = options.instances
        config = {
            "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": streams * options.threads,
            # f32 by default: answers equal to Paddle's (bf16 is faster and reads differently).
            "INFERENCE_PRECISION_HINT": "bf16" if options.precision == "bf16" else "f32",
            # Several servers on one machine (standard mode) would otherwise pin to the same cores.
            "ENABLE_CPU_PINNING": False,
            # Kernels set up per input shape, kept for the next call of that shape (entries are
            # per layer and shape). Fast mode on 20 pages of different sizes, then 150 more sizes:
            # 16 entries: 205 ms per image, 0.9 GB; 2000: 136 ms, 1.0 -> 1.2 GB, then flat;
            # OpenVINO's 5000: 138 ms, 1.0 -> 1.4 GB and still growing.
            "CPU_RUNTIME_CACHE_CAPACITY": 2000,
        }
        self.folder = folder
        self.options = options
        self._config = config
        # A rec model whose folder fetches BEST_PATH runs with the best path as its only
        # output, so the (N, T, classes) softmax is not written out; the whole graph (the
        # softmax too) is compiled if a caller fetches another output (``_whole_requests``).
        # In-process the time saved is within the noise (bench/RESULTS.md, "Model families").
        self._best_path = BEST_PATH in (v.name for v in folder.fetches)
        self._whole: queue.SimpleQueue | None = None
        self._whole_lock = threading.Lock()
        try:
            model = self._read()
            names = [p.get_any_name() for p in model.outputs]
            if self._best_path and len(names) > 1:
                model = ov_model(model.get_results()[:1], model)
            compiled = ov.compile_model(model, "CPU", config)
        except Exception as e:  # any frontend or plugin failure: the caller falls back
            raise ModelUnreadable(f"OpenVINO cannot run it: {_reason(e)}") from None
        # Static dims by input (-1 = dynamic): OpenVINO answers an input that does not fit with
        # an empty output instead of an error, so calls are checked here.
        self._dims = {p.get_any_name(): [d.get_length() if d.is_static else -1
                                         for d in p.get_partial_shape()]
                      for p in compiled.inputs}
        self.input_names = list(self._dims)
        self.output_names = names
        self._compiled_names = {n for p in compiled.outputs for n in p.get_names()}
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        if warmup and folder.rec_height:
            warmup = [*warmup, *folder.shape_extremes()]
        for _ in range(streams):
            request = compiled.create_infer_request()
            for feeds in warmup:
                request.infer(feeds)
            self._free.put(request)

    def run(self, feeds: dict[str, np.ndarray],
            fetch: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch: feeds by input name; returns the fetched outputs (all by default)."""
        self._check(feeds)
        fetch = list(fetch or self.output_names)
        free = self._free if self._compiled_names.issuperset(fetch) else self._whole_requests()
        request = free.get()
        try:
            request.infer({n: np.ascontiguousarray(v) for n, v in feeds.items()})
            return {n: request.get_tensor(n).data.copy() for n in fetch}
        except RuntimeError as e:
            # Dims the model leaves free but its layers cannot combine (e.g. a det input whose
            # sides are not multiples of 32), or an empty input (a side of 0, which the CPU
            # plugin's layers refuse): the caller's input, not a failure of ours.
            if "shape_inference" not in str(e) and all(v.size for v in feeds.values()):
                raise
            shapes = {n: list(v.shape) for n, v in feeds.items()}
            raise BadRequest(f"the model cannot take inputs of shape {shapes}: "
                             f"{_reason(e)}") from None
        finally:
            free.put(request)

    def _read(self):
        """The folder's model, with BEST_PATH first if the folder fetches it and the graph
        lacks it (ONNX rec models)."""
        model = core().read_model(*(str(f) for f in (self.folder.model_file,
                                                      self.folder.params_file) if f))
        if self._best_path and BEST_PATH not in {n for p in model.outputs for n in p.get_names()}:
            model = with_best_path(model)
        return model

    def _whole_requests(self) -> queue.SimpleQueue:
        """Infer requests of the whole graph with the best path, compiled on first use."""
        with self._whole_lock:
            if self._whole is None:
                compiled = core().compile_model(self._read(), "CPU", self._config)
                free: queue.SimpleQueue = queue.SimpleQueue()
                for _ in range(self.options.instances):
                    free.put(compiled.create_infer_request())
                self._whole = free
            return self._whole

    def _check(self, feeds: dict[str, np.ndarray]) -> None:
        if set(feeds) != set(self._dims):
            raise ValueError(f"feeds {sorted(feeds)}; the model takes {sorted(self._dims)}")
        for name, value in feeds.items():
            dims = self._dims[name]
            if value.ndim != len(dims) or any(d not in (-1, s) for d, s in zip(dims, value.shape)):
                raise ValueError(f"input {name}: shape {list(value.shape)}, the model expects "
                                 f"[{', '.join('?' if d < 0 else str(d) for d in dims)}]")


def ov_model(results, like):
    """An ``openvino.Model`` of ``results``, with the inputs and name of model ``like``."""
    return _openvino().Model(list(results), like.get_parameters(), like.get_friendly_name())


def with_best_path(model):
    """``model`` with ``BEST_PATH`` (N, T, 2) as its first output: each time step's best class
    and its probability, computed from the class probabilities (its output, kept second) in the
    graph. The services fetch only it: 2 floats per step leave the engine instead of thousands
    (docs/design.md §3.8)."""
    ops = _openvino().opset13

    probs = model.get_results()[0].input_value(0)  # what the first output gives
    top = ops.topk(probs, ops.constant(np.int64(1)), axis=-1, mode="max", sort="none",
                   index_element_type="i64")
    best = ops.concat([ops.convert(top.output(1), "f32"), top.output(0)], axis=-1)
    best.output(0).set_names({BEST_PATH})
    return ov_model([ops.result(best), *model.get_results()], model)


def _reason(e: Exception) -> str:
    """The informative line of an OpenVINO exception (they start with C++ source locations)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check '"))]
    return " ".join(useful or lines or [type(e).__name__])[:300]
