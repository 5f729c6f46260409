"""``python -m pdserving.serve --model DIR --port 9293``: the model server (Paddle Serving flags).

Its port answers gRPC and HTTP (``POST /GeneralModelService/inference``, JSON or protobuf), as
Paddle Serving 0.9's did, so each of its clients' modes works against it.

Start-up failures a user can fix (no GPU build, port taken, not a model folder) are one line on
stderr and a non-zero exit, never a traceback. "ready" is printed only once the model is warm.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from pdserving.auth import AuthError, add_auth_flags, from_args
from pdserving.engine import (EngineError, EngineOptions, add_engine_flags, options_from_flags,
                              parse_gpu_ids)
from pdserving.engine.model_folder import ModelNotFound
from pdserving.engine.process_pool import WorkerError
from pdserving.families import add_family_flag
from pdserving.package import ensure_model
from pdserving.net import PortInUse
from pdserving.rpc import MAX_BODY_SIZE
from pdserving.rpc.server import serve
from pdserving.tls import TlsError, add_server_flags, server_tls

GRACE_S = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # "python -m pdserving.serve" (or the 2020 name, paddle_serving_server.serve) in the usage;
    # the console script pdserving-serve has no module spec and keeps its own name.
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    p = argparse.ArgumentParser(prog=f"python -m {spec.name}" if spec else None,
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="server model folder (e.g. ocr_det_model)")
    add_family_flag(p)
    p.add_argument("--port", type=int, default=9393)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--thread", type=int, default=4,
                   help="concurrent calls (gRPC and HTTP); they share min(thread, cores) "
                        "model processes")
    p.add_argument("--gpu_ids", type=parse_gpu_ids, default=(),
                   help="GPUs to run on, comma separated, one model worker on each unless "
                        "--instances says more (they take the GPUs in turn); empty = CPU")
    p.add_argument("--device", choices=["cpu", "gpu"], default=None,
                   help="gpu without --gpu_ids means GPU 0")
    add_engine_flags(p)
    p.add_argument("--http", action=argparse.BooleanOptionalAction, default=True,
                   help="HTTP/1.1 (Paddle Serving's HttpClient) on the gRPC port; --no-http: "
                        "gRPC alone, without the relay (1-4 ms on a 960x960 det call)")
    p.add_argument("--workdir", help="accepted for compatibility; pdserving writes no work files")
    p.add_argument("--max_body_size", type=int, default=MAX_BODY_SIZE,
                   help="largest request/response in bytes (an HTTP body also once "
                        "decompressed)")
    add_server_flags(p)
    add_auth_flags(p, metrics=False)
    return p.parse_args(argv)


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The engine flags on the devices ``--device`` and ``--gpu_ids`` name."""
    if args.device == "cpu":
        gpu_ids = ()
    elif args.device == "gpu":
        gpu_ids = args.gpu_ids or (0,)
    else:
        gpu_ids = args.gpu_ids
    return options_from_flags(args, gpu_ids)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = engine_options(args)
    try:  # a bundled model's folder (ocr_det_model, ...) is written here if missing
        ensure_model(args.model, args.family, options.engine)
    except FileNotFoundError as e:
        print(f"error: model folder not found: {e}", file=sys.stderr)
        return 2
    except (EngineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        tls = server_tls(args)
        auth = from_args(args)
        server = serve(args.model, args.port, host=args.host, threads=args.thread,
                       options=options, max_body_size=args.max_body_size, http=args.http,
                       tls=tls, auth=auth)
    except (EngineError, ModelNotFound, PortInUse, WorkerError, TlsError, AuthError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # The handler only records the signal: taking a lock in a handler (Event.set) deadlocks when
    # a second signal lands while the first handler holds it.
    signals: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: signals.append(signum))
    print(f"pdserving model server ready on {args.host}:{args.port} "
          f"({Path(args.model).resolve().name}, engine {server.engine})", flush=True)
    while not signals:
        time.sleep(0.2)
    server.stop(GRACE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
