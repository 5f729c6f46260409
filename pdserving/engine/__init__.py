"""The engine interface: what the OCR pipeline needs from a model, wherever it runs.

A model is a callable ``ndarray -> ndarray`` (one input batch in, one output batch out). Paddle
predictors (``paddle_engine.PaddleEngine``), the same in worker processes of this machine
(``process_pool.WorkerPool``) and a model behind RPC (``pdserving.rpc.client.RemoteModel``) all
satisfy it, so the pipeline and the web service never know which one they hold.
"""

from typing import Protocol

import numpy as np


class Model(Protocol):
    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class GpuUnavailable(RuntimeError):
    """Raised when GPU inference is asked of a Paddle build without CUDA."""

    def __init__(self) -> None:
        super().__init__(
            "GPU requested but this Paddle build has no CUDA support: install the GPU build with "
            "`pip install -r requirements-gpu.txt` (paddlepaddle-gpu), or run with `cpu`."
        )


__all__ = ["Model", "GpuUnavailable"]
