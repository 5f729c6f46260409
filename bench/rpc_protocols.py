"""What one port for every protocol costs: det calls on a 960x960 input, median of N.

``python -m bench.rpc_protocols [--runs 30]``. Two model servers run side by side, each a
``python -m pdserving.serve`` subprocess with one call thread and the same engine options: one
as started by hand (the dispatcher owns its port and relays gRPC to grpcio on a unix socket),
one with ``--no-http`` (grpcio straight on its port, as the standard services start their own).
Our client (``RemoteModel``) calls them in turn, so drift hits both alike. Then, for
information, the same call over HTTP as Paddle Serving's ``HttpClient`` sends it (typed
``float_data``), as JSON and as protobuf: body built once, timed from the post to the output as
an array.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time

import httpx
import numpy as np

from pdserving import package
from pdserving.launcher import model_server
from pdserving.net import free_port
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.rpc.client import RemoteModel

SIDE = 960
FETCH = "sigmoid_0.tmp_0"
URL = "http://{}/GeneralModelService/inference"


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def http_calls(endpoint: str, x: np.ndarray) -> dict:
    """JSON and protobuf calls of ``HttpClient``'s shape, each returning the output array."""
    tensor = {"float_data": x.reshape(-1).tolist(), "shape": list(x.shape), "elem_type": 1,
              "name": "x", "alias_name": "image"}
    as_json = json.dumps({"tensor": [tensor], "fetch_var_names": [FETCH], "log_id": 0})
    as_proto = pb.Request(tensor=[pb.Tensor(**tensor)], fetch_var_names=[FETCH])
    as_proto = as_proto.SerializeToString()
    client = httpx.Client(timeout=120)
    url = URL.format(endpoint)

    def json_call() -> np.ndarray:
        reply = client.post(url, content=as_json, headers={"Content-Type": "application/json"})
        return np.asarray(reply.json()["outputs"][0]["tensor"][0]["float_data"], np.float32)

    def proto_call() -> np.ndarray:
        reply = client.post(url, content=as_proto, headers={"Content-Type": "application/proto"})
        return np.asarray(pb.Response.FromString(reply.content).outputs[0].tensor[0].float_data,
                          np.float32)

    return {"HTTP+JSON": json_call, "HTTP+proto": proto_call}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per call otherwise
    x = np.random.default_rng(0).standard_normal((1, 3, SIDE, SIDE)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        det = str(package.get_model("ocr_det", tmp, "PP-OCRv4_mobile"))  # FETCH is its output
        port = free_port(19393)
        plain = model_server(det, port, extra_args=["--thread", "1", "--no-http"])
        with plain, model_server(det, free_port(port + 1), extra_args=["--thread", "1"]) as ours:
            direct = RemoteModel([plain.endpoint], feed_name="image")
            relayed = RemoteModel([ours.endpoint], feed_name="image")
            np.testing.assert_allclose(direct(x), relayed(x), atol=1e-5)  # warm-up, and sure
            times = {"gRPC, --no-http": [], "gRPC via the dispatcher": []}
            for _ in range(args.runs):
                times["gRPC, --no-http"] += timed(lambda: direct(x), 1)
                times["gRPC via the dispatcher"] += timed(lambda: relayed(x), 1)
            expected = relayed(x)[0, 0].reshape(-1)
            for name, call in http_calls(ours.endpoint, x).items():
                np.testing.assert_allclose(call(), expected, atol=1e-5)
                times[name] = timed(call, max(3, args.runs // 6))
            direct.close()
            relayed.close()
    print(f"det {SIDE}x{SIDE}, median (min-max) ms:")
    for name, ms in times.items():
        print(f"  {name:26} {statistics.median(ms):7.1f}  ({min(ms):.1f}-{max(ms):.1f}, "
              f"{len(ms)} calls)")


if __name__ == "__main__":
    main()
