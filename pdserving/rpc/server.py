"""The model server: one Paddle model behind gRPC ``GeneralModelService`` (SPEC section 5).

Every request is checked against the model's feed/fetch variables before it reaches Paddle, so a
bad request gets ``err_no``/``err_msg`` in its Response while the server keeps serving.
"""

from __future__ import annotations

import logging
import os
import socket
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np

from pdserving import modelconf
from pdserving.convert import read_model_io
from pdserving.engine.paddle_engine import EngineOptions, find_model_files
from pdserving.engine.process_pool import PooledModel, WorkerPool
from pdserving.errors import BadRequest, ServingError
from pdserving.modelconf import Var
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.proto import general_model_service_pb2_grpc as pb_grpc
from pdserving.rpc.codec import CodecError, from_tensor, numpy_dtype, to_tensor

log = logging.getLogger(__name__)

MAX_BODY_SIZE = 512 * 1024 * 1024
ENGINE_NAME = "general_infer_0"
WARMUP_SIDE = 320  # stands for dynamic dims at warm-up: a multiple of 32, the rec batch floor


class PortInUse(OSError):
    """The server could not bind its address."""


class GeneralModelService(pb_grpc.GeneralModelServiceServicer):
    """Runs requests on the model's worker processes; feed/fetch names may be aliases or real
    names."""

    def __init__(self, engine: PooledModel, feeds: list[Var], fetches: list[Var]):
        self.engine = engine
        self.feeds = _by_name(feeds)
        self.feed_order = feeds
        self.fetches = _by_name(fetches)
        self.fetch_order = fetches

    def inference(self, request: pb.Request, context) -> pb.Response:
        try:
            outputs = self.predict(request)
        except ServingError as e:
            return pb.Response(log_id=request.log_id, err_no=e.err_no, err_msg=e.message)
        except Exception as e:  # Paddle's own failures: reported, the server goes on serving
            log.exception("inference failed (log_id %s)", request.log_id)
            return pb.Response(log_id=request.log_id, err_no=500,
                               err_msg=f"inference failed: {type(e).__name__}: {e}")
        return pb.Response(log_id=request.log_id,
                           outputs=[pb.ModelOutput(tensor=outputs, engine_name=ENGINE_NAME)])

    debug = inference

    def predict(self, request: pb.Request) -> list[pb.Tensor]:
        """Check and decode the feeds, run the model, encode the requested outputs."""
        feeds = self._decode_feeds(request.tensor)
        fetch = self._fetch_vars(request.fetch_var_names)
        results = self.engine.run(feeds, [v.name for v in fetch])
        return [to_tensor(results[v.name], name=v.name, alias_name=v.alias) for v in fetch]

    def _decode_feeds(self, tensors) -> dict[str, np.ndarray]:
        if not tensors:
            raise BadRequest("empty request: no feed tensor")
        feeds = {}
        for t in tensors:
            label = t.alias_name or t.name
            var = self.feeds.get(t.alias_name) or self.feeds.get(t.name)
            if var is None:
                raise BadRequest(f"unknown feed name {label!r}; this model takes "
                                 f"{[v.alias for v in self.feed_order]}")
            if t.elem_type != var.type_code:
                raise BadRequest(
                    f"feed {label!r}: elem_type {t.elem_type} ({_dtype_name(t.elem_type)}), "
                    f"the model expects {var.type_code} ({_dtype_name(var.type_code)})")
            _check_shape(label, list(t.shape), var.shape)
            try:
                feeds[var.name] = from_tensor(t)
            except CodecError as e:
                raise BadRequest(str(e)) from None
        missing = [v.alias for v in self.feed_order if v.name not in feeds]
        if missing:
            raise BadRequest(f"missing feed {missing}")
        return feeds

    def _fetch_vars(self, names) -> list[Var]:
        if not names:
            return self.fetch_order
        unknown = [n for n in names if n not in self.fetches]
        if unknown:
            raise BadRequest(f"unknown fetch name {unknown}; this model gives "
                             f"{[v.alias for v in self.fetch_order]}")
        return [self.fetches[n] for n in names]


def _by_name(variables: list[Var]) -> dict[str, Var]:
    """Index by alias and by real name: clients may use either."""
    return {**{v.name: v for v in variables}, **{v.alias: v for v in variables}}


def _dtype_name(code: int) -> str:
    try:
        return "bfloat16" if code == 6 else numpy_dtype(code).name.replace("object", "string")
    except CodecError:
        return "unknown"


def _check_shape(label: str, shape: list[int], expected: list[int]) -> None:
    """Rank must be the config's plus the batch dim; the config's fixed dims must match."""
    want = ["batch"] + [d if d > 0 else "any" for d in expected]
    if len(shape) != len(want) or any(d > 0 and d != s for d, s in zip(expected, shape[1:])):
        raise BadRequest(f"feed {label!r}: shape {shape}, the model expects "
                         f"[{', '.join(map(str, want))}]")


def model_vars(model_dir: str | os.PathLike) -> tuple[list[Var], list[Var]]:
    """Feed/fetch variables from ``serving_server_conf.prototxt``, else read from the model file
    (then aliases are the real names)."""
    conf_path = Path(model_dir) / modelconf.SERVER_CONF
    if conf_path.is_file():
        conf = modelconf.load_config(conf_path)
        return modelconf.feed_vars(conf), modelconf.fetch_vars(conf)
    return read_model_io(find_model_files(model_dir)[0])


def warmup_feeds(feeds: list[Var]) -> dict[str, np.ndarray]:
    """Zero tensors of batch 1 shaped by the config (dynamic dims = ``WARMUP_SIDE``)."""
    return {v.name: np.zeros([1] + [d if d > 0 else WARMUP_SIDE for d in v.shape],
                             numpy_dtype(v.type_code)) for v in feeds}


def check_port(host: str, port: int) -> None:
    """Fail before the model loads if the port is taken (bound as gRPC binds: SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as e:
            raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror}") from None


def serve(model_dir: str | os.PathLike, port: int, host: str = "0.0.0.0", threads: int = 4,
          options: EngineOptions = EngineOptions(),
          max_body_size: int = MAX_BODY_SIZE) -> grpc.Server:
    """Load and warm up the model, then start serving it; returns the started server.

    ``threads`` gRPC threads take calls; they share min(threads, cores) model worker processes
    (Paddle keeps the GIL while it runs, so only processes run models side by side). Raises
    ``PortInUse`` if the address cannot be bound (SO_REUSEPORT is off, so a second server on
    the same port fails instead of silently sharing it).
    """
    check_port(host, port)
    feeds, fetches = model_vars(model_dir)
    pool = WorkerPool({"model": model_dir}, options, workers=min(threads, os.cpu_count() or 1),
                      warmup={"model": warmup_feeds(feeds)})
    engine = pool.models["model"]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pdserving-rpc"),
        options=[("grpc.max_send_message_length", max_body_size),
                 ("grpc.max_receive_message_length", max_body_size),
                 ("grpc.so_reuseport", 0)])
    pb_grpc.add_GeneralModelServiceServicer_to_server(
        GeneralModelService(engine, feeds, fetches), server)
    address = f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        pool.close()
        raise PortInUse(f"cannot listen on {address}: port in use or address not available")
    server.start()
    return server
