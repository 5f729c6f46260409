"""``paddle_serving_app.local_predict.Debugger``: a served model run in this process.

The 2020 fast scripts (``ocr_local_server.py``) run det through it; ``WebService``'s
``run_debugger_service`` runs its own model through it. It loads the folder as the services do
(``pdserving.engine.load``: OpenVINO on the CPU, Paddle on a GPU) and takes feeds and fetches by
the config's aliases or real names, as ``Client`` does against a model server.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from pdserving.dtypes import numpy_dtype
from pdserving.engine import EngineError, engine_options
from pdserving.engine.load import ServedModel, load_model
from pdserving.package import ensure_model
from pdserving.rpc.client import check_request


def fail(error: object) -> SystemExit:
    """A start-up problem of a 2020 script as one line on stderr, not a traceback: the scripts
    call these methods at module level."""
    return SystemExit(f"error: {error}")


class Debugger:
    """``load_model_config(dir, gpu=False)``, then ``predict(feed, fetch) -> {name: ndarray}``."""

    def __init__(self) -> None:
        self.served: ServedModel | None = None

    def load_model_config(self, model_path: str | os.PathLike, gpu: bool = False,
                          profile: bool = False, cpu_num: int | None = None,
                          gpu_id: int | Sequence[int] = 0, **_ignored) -> None:
        """Load and warm up the model; where no GPU can run it, ``gpu=True`` ends the script
        with the one-line GPU error. (``profile`` and Paddle Serving's other tuning arguments
        are accepted and ignored.)"""
        gpu_ids = (gpu_id,) if isinstance(gpu_id, int) else tuple(gpu_id)
        options = engine_options(None, gpu_ids if gpu else (), threads=cpu_num)
        try:
            self.served = load_model(ensure_model(model_path), options)
        except (EngineError, FileNotFoundError) as e:
            raise fail(e) from None

    def predict(self, feed=None, fetch=None, batch: bool = False,
                log_id: int = 0) -> dict[str, np.ndarray]:
        """Run one batch. A feed dict's arrays are taken as they are when they carry the batch
        axis (the 2020 scripts add it) and get one otherwise; a list of dicts is one sample
        each. Outputs come back under the names asked for."""
        served = self.served
        if served is None:
            raise RuntimeError("call load_model_config(model_dir) first")
        samples, fetch = check_request(feed, fetch, served.fetches)
        feeds = {}
        for name in samples[0]:
            var = served.feeds.get(name)
            if var is None:
                raise ValueError(f"Wrong feed name: {name}.")
            values = [np.asarray(s[name], dtype=numpy_dtype(var.type_code)) for s in samples]
            if len(values) == 1 and values[0].ndim == len(var.shape) + 1:
                feeds[var.name] = values[0]
            else:
                feeds[var.name] = np.concatenate(values) if batch else np.stack(values)
        names = [served.fetches[f].name for f in fetch]
        results = served.model.run(feeds, list(dict.fromkeys(names)))
        return {asked: results[name] for asked, name in zip(fetch, names)}

    def close(self) -> None:
        """Stop the model's worker processes (Paddle), if any."""
        if self.served is not None:
            self.served.close()
