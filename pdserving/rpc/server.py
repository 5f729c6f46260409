"""The model server: one Paddle model behind ``GeneralModelService`` (docs/design.md §4).

Every request is checked against the model's feed/fetch variables before it reaches the engine
(OpenVINO or Paddle), so a bad request gets ``err_no``/``err_msg`` in its Response while the
server keeps serving. One port answers gRPC and Paddle Serving's HTTP/1.1 (JSON or protobuf):
a dispatcher (``dispatch``) relays each connection to the gRPC server or to the HTTP app
(``http``), both listening on unix sockets in a private folder, both answering through
``GeneralModelService.respond``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent import futures
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Callable

import grpc
import numpy as np

from pdserving.auth import Auth, interceptors
from pdserving.dtypes import type_name
from pdserving.engine import EngineOptions
from pdserving.engine.load import ServedModel, load_model
from pdserving.errors import BadRequest, ServingError
from pdserving.modelconf import Var
from pdserving.net import bind
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.proto import general_model_service_pb2_grpc as pb_grpc
from pdserving.rpc import MAX_BODY_SIZE, listen, server_options
from pdserving.rpc.codec import CodecError, from_tensor, to_tensor
from pdserving.rpc.dispatch import Dispatcher
from pdserving.rpc.http import HttpServer, create_app
from pdserving.tls import ServerTls

log = logging.getLogger(__name__)

ENGINE_NAME = "general_infer_0"


class GeneralModelService(pb_grpc.GeneralModelServiceServicer):
    """Runs requests on the model's engine; feed/fetch names may be aliases or real names."""

    def __init__(self, served: ServedModel):
        self.engine = served.model  # OpenVINOEngine or PooledModel: ``run(feeds, fetch)``
        self.feeds = served.feeds
        self.feed_order = list(served.folder.feeds)
        self.fetches = served.fetches
        self.fetch_order = list(served.folder.fetches)

    def inference(self, request: pb.Request, context) -> pb.Response:
        return self.respond(lambda: request)[0]

    debug = inference

    def respond(self, read: Callable[[], pb.Request]) -> tuple[pb.Response, int]:
        """The Response to the request ``read()`` gives, and its HTTP status: 200, a
        ServingError's own (``read`` raises them for bodies it cannot decode), or 500."""
        log_id = 0
        try:
            request = read()
            log_id = request.log_id
            outputs = self.predict(request)
        except ServingError as e:
            return pb.Response(log_id=log_id, err_no=e.err_no, err_msg=e.message), e.status
        except Exception as e:  # Paddle's own failures: reported, the server goes on serving
            log.exception("inference failed (log_id %s)", log_id)
            return pb.Response(log_id=log_id, err_no=500,
                               err_msg=f"inference failed: {type(e).__name__}: {e}"), 500
        return pb.Response(log_id=log_id, outputs=[
            pb.ModelOutput(tensor=outputs, engine_name=ENGINE_NAME)]), 200

    def predict(self, request: pb.Request) -> list[pb.Tensor]:
        """Check and decode the feeds, run the model, encode the requested outputs: in the
        typed fields if the feeds came in them (a client of Paddle Serving 0.9's server reads
        only those), else as raw bytes."""
        feeds = self._decode_feeds(request.tensor)
        fetch = self._fetch_vars(request.fetch_var_names)
        results = self.engine.run(feeds, list(dict.fromkeys(v.name for _, v in fetch)))
        typed = not any(t.tensor_content for t in request.tensor)
        return [to_tensor(results[v.name], name=v.name, alias_name=asked, typed=typed)
                for asked, v in fetch]

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
                    f"feed {label!r}: elem_type {t.elem_type} ({type_name(t.elem_type)}), "
                    f"the model expects {var.type_code} ({type_name(var.type_code)})")
            _check_shape(label, list(t.shape), var.shape)
            try:
                feeds[var.name] = from_tensor(t)
            except CodecError as e:
                raise BadRequest(str(e)) from None
        missing = [v.alias for v in self.feed_order if v.name not in feeds]
        if missing:
            raise BadRequest(f"missing feed {missing}")
        return feeds

    def _fetch_vars(self, names) -> list[tuple[str, Var]]:
        """(name as asked, variable) per output: the reply keeps the caller's name, alias or
        real, so a client finds each output under the name it asked for."""
        if not names:
            return [(v.alias, v) for v in self.fetch_order]
        unknown = [n for n in names if n not in self.fetches]
        if unknown:
            raise BadRequest(f"unknown fetch name {unknown}; this model gives "
                             f"{[v.alias for v in self.fetch_order]}")
        return [(n, self.fetches[n]) for n in names]


def _check_shape(label: str, shape: list[int], expected: list[int]) -> None:
    """Rank must be the config's plus the batch dim; the config's fixed dims must match."""
    want = ["batch"] + [d if d > 0 else "any" for d in expected]
    if len(shape) != len(want) or any(d > 0 and d != s for d, s in zip(expected, shape[1:])):
        raise BadRequest(f"feed {label!r}: shape {shape}, the model expects "
                         f"[{', '.join(map(str, want))}]")


@dataclass
class ModelServer:
    """A started model server: its gRPC server, its model, and (unless gRPC only) the
    dispatcher and HTTP side in front."""

    grpc: grpc.Server
    pool: futures.ThreadPoolExecutor
    model: ServedModel
    front: "HttpFront | None" = None

    @property
    def engine(self) -> str:
        """The engine its model runs on (after any fall-back to Paddle)."""
        return self.model.engine

    def stop(self, grace: float | None) -> None:
        """Stop taking calls, let those in flight finish (up to ``grace`` s), free the model."""
        if self.front:
            self.front.dispatcher.close()
        stopped = self.grpc.stop(grace)
        if self.front:
            self.front.http.stop(grace)
        stopped.wait()
        if self.front:
            self.front.dispatcher.stop()
            self.front.workdir.cleanup()
        self.pool.shutdown(cancel_futures=True)
        self.model.close()


@dataclass
class HttpFront:
    """What puts HTTP on the gRPC port: the dispatcher, the HTTP app's server, and the private
    folder of their unix sockets."""

    dispatcher: Dispatcher
    http: HttpServer
    workdir: tempfile.TemporaryDirectory


def load_service(model_dir: str | os.PathLike, threads: int,
                 options: EngineOptions) -> tuple[GeneralModelService, ServedModel]:
    """The model loaded and warmed up, behind its service: on Paddle, no more worker processes
    than the threads that take calls."""
    if options.engine == "paddle" and options.instances is None and not options.gpu_ids:
        options = replace(options, instances=min(threads, len(os.sched_getaffinity(0))))
    served = load_model(model_dir, options)
    return GeneralModelService(served), served


def grpc_server(service: GeneralModelService, pool: futures.ThreadPoolExecutor,
                max_body_size: int, auth: Auth = Auth()) -> grpc.Server:
    """The gRPC server of ``service``, its calls run in ``pool`` (no port yet); with ``auth``
    on, a call without one of its keys ends UNAUTHENTICATED."""
    server = grpc.server(pool, options=server_options(max_body_size),
                         interceptors=interceptors(auth))
    pb_grpc.add_GeneralModelServiceServicer_to_server(service, server)
    return server


def serve(model_dir: str | os.PathLike, port: int, host: str = "0.0.0.0", threads: int = 4,
          options: EngineOptions = EngineOptions(),
          max_body_size: int = MAX_BODY_SIZE, http: bool = True,
          tls: ServerTls | None = None, auth: Auth = Auth()) -> ModelServer:
    """Load and warm up the model, then start serving it; returns the started server.

    ``threads`` threads take calls, gRPC and HTTP alike; ``options.instances`` of them run the
    model at once (by default OpenVINO's one stream on every core, or min(threads, cores)
    Paddle worker processes, or one per GPU). Raises ``PortInUse`` before loading the model if
    the address cannot be bound (SO_REUSEPORT is off, so a second server on the same port fails
    instead of silently sharing it). ``http=False``: gRPC alone, straight on the port, without
    the relay's 1-4 ms per det call (for a model server only our own client calls). ``tls``:
    both protocols speak TLS only. ``auth``: both want one of its API keys.
    """
    with ExitStack() as undo:  # what is started so far, stopped again if a later step fails
        listener = undo.enter_context(bind(host, port))
        service, loaded = load_service(model_dir, threads, options)
        undo.callback(loaded.close)
        pool = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pdserving-rpc")
        undo.callback(pool.shutdown)
        server = grpc_server(service, pool, max_body_size, auth)
        if http:
            workdir = tempfile.TemporaryDirectory(prefix="pdserving-")  # mode 0700: ours alone
            undo.callback(workdir.cleanup)
            address = "unix:" + os.path.join(workdir.name, "grpc.sock")
        else:
            listener.close()  # grpc binds the port itself
            address = f"{host}:{port}"
        listen(server, address, tls and tls.grpc_credentials())
        server.start()
        undo.callback(lambda: server.stop(None).wait())
        front = None
        if http:
            http_path = os.path.join(workdir.name, "http.sock")
            app = create_app(service.respond, pool, max_body_size, auth)
            http_server = HttpServer(app, http_path, tls)
            undo.callback(http_server.stop, None)
            http_server.start()
            dispatcher = Dispatcher(listener, address.removeprefix("unix:"), http_path,
                                    tls=tls is not None).start()
            front = HttpFront(dispatcher, http_server, workdir)
        undo.pop_all()
    return ModelServer(server, pool, loaded, front)

