"""The model server: one Paddle model behind gRPC ``GeneralModelService`` (SPEC section 5).

Every request is checked against the model's feed/fetch variables before it reaches the engine
(OpenVINO or Paddle), so a bad request gets ``err_no``/``err_msg`` in its Response while the
server keeps serving.
"""

from __future__ import annotations

import logging
import os
from concurrent import futures
from dataclasses import dataclass, replace

import grpc
import numpy as np

from pdserving.engine import EngineOptions
from pdserving.engine.load import LoadedModels, load_models
from pdserving.engine.model_folder import ModelFolder
from pdserving.errors import BadRequest, ServingError
from pdserving.modelconf import Var, by_name
from pdserving.net import PortInUse, bind
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.proto import general_model_service_pb2_grpc as pb_grpc
from pdserving.rpc import MAX_BODY_SIZE
from pdserving.rpc.codec import CodecError, from_tensor, to_tensor, type_name

log = logging.getLogger(__name__)

ENGINE_NAME = "general_infer_0"


class GeneralModelService(pb_grpc.GeneralModelServiceServicer):
    """Runs requests on the model's engine; feed/fetch names may be aliases or real names."""

    def __init__(self, engine, folder: ModelFolder):
        self.engine = engine  # OpenVINOEngine or PooledModel: ``run(feeds, fetch)``
        self.feeds = by_name(folder.feeds)
        self.feed_order = list(folder.feeds)
        self.fetches = by_name(folder.fetches)
        self.fetch_order = list(folder.fetches)

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
        results = self.engine.run(feeds, list(dict.fromkeys(v.name for _, v in fetch)))
        return [to_tensor(results[v.name], name=v.name, alias_name=asked) for asked, v in fetch]

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
    """A started model server: the gRPC server, and its model."""

    grpc: grpc.Server
    models: LoadedModels

    @property
    def engine(self) -> str:
        """The engine its model runs on (after any fall-back to Paddle)."""
        return self.models.engines["model"]

    def stop(self, grace: float | None) -> None:
        """Stop taking calls, let those in flight finish (up to ``grace`` s), free the model."""
        self.grpc.stop(grace).wait()
        self.models.close()


def serve(model_dir: str | os.PathLike, port: int, host: str = "0.0.0.0", threads: int = 4,
          options: EngineOptions = EngineOptions(),
          max_body_size: int = MAX_BODY_SIZE) -> ModelServer:
    """Load and warm up the model, then start serving it; returns the started server.

    ``threads`` gRPC threads take calls; ``options.instances`` of them run the model at once (by
    default OpenVINO's one stream on every core, or min(threads, cores) Paddle worker
    processes, or one per GPU). Raises ``PortInUse`` if the address cannot be bound
    (SO_REUSEPORT is off, so a second server on the same port fails instead of silently sharing
    it).
    """
    bind(host, port).close()  # fail before the model loads if the port is taken
    folder = ModelFolder.read(model_dir)
    if options.engine == "paddle" and options.instances is None and not options.gpu_ids:
        options = replace(options, instances=min(threads, len(os.sched_getaffinity(0))))
    loaded = load_models({"model": folder}, options, {"model": folder.warmup_feeds()})
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pdserving-rpc"),
        options=[("grpc.max_send_message_length", max_body_size),
                 ("grpc.max_receive_message_length", max_body_size),
                 ("grpc.so_reuseport", 0)])
    pb_grpc.add_GeneralModelServiceServicer_to_server(
        GeneralModelService(loaded.models["model"], folder), server)
    address = f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        loaded.close()
        raise PortInUse(f"cannot listen on {address}: port in use or address not available")
    server.start()
    return ModelServer(server, loaded)
