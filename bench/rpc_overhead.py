"""What the RPC hop costs: one det call on a 960x960 image over gRPC vs in-process.

``python -m bench.rpc_overhead [--runs 50]``. The model server is a real ``python -m
pdserving.serve`` subprocess with one model worker; the in-process engine has the same options
and the same heap tuning, so the difference is the hop: encoding, the socket, decoding and the
server's hand-off to its worker (11 MB in, 3.7 MB out).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from pdserving import package
from pdserving import malloc
from pdserving.engine.paddle_engine import PaddleEngine
from pdserving.launcher import model_server
from pdserving.net import free_port
from pdserving.rpc.client import RemoteModel

SIDE = 960


def median_ms(fn, x: np.ndarray, runs: int) -> float:
    fn(x)  # shape warm-up: the first call at a new size builds oneDNN kernels
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    x = np.random.default_rng(0).standard_normal((1, 3, SIDE, SIDE)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        det = package.get_model("ocr_det", tmp)
        with model_server(det, free_port(19393), extra_args=["--thread", "1"]) as server:
            remote = RemoteModel([server.endpoint], feed_name="image", name="det model server")
            rpc = median_ms(remote, x, args.runs)
            remote.close()
        malloc.for_models()
        local = median_ms(PaddleEngine(det), x, args.runs)
    print(f"det {SIDE}x{SIDE}, median of {args.runs}: in-process {local:.1f} ms, "
          f"over RPC {rpc:.1f} ms, RPC overhead {rpc - local:.1f} ms")


if __name__ == "__main__":
    main()
