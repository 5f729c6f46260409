"""PaddleOCR's pipeline services (docs/design.md §6): one more front on the kit's handlers.

``Pipeline`` answers one ``Request`` (key/value strings) with one ``Response``. The HTTP front
(``http_front``: the messages as JSON, as Paddle Serving's gateway maps them) and the gRPC
``PipelineService`` (``serve_grpc``) both call it. Inside it is an ordinary handler of
``pdserving.services``: the same models, pipeline, limits and metrics as ``ocr_local_server.py``.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, Mapping

import grpc
from google.protobuf import json_format

from pdserving import metrics
from pdserving.auth import interceptors
from pdserving.errors import BadRequest, PayloadTooLarge, ServingError
from pdserving.imageio import decode_base64_image
from pdserving.proto import pipeline_service_pb2 as pb
from pdserving.proto import pipeline_service_pb2_grpc as pb_grpc
from pdserving.rpc import listen, server_options
from pdserving.tls import ServerTls
from pdserving.web.app import Front, Handler, WebSettings

log = logging.getLogger(__name__)

SERVICE_NAME = "ocr"  # PaddleOCR's OcrService(name="ocr"): the {name} of the URL
DROP_SCORE = 0.5      # PaddleOCR's pipeline keeps the lines scored at least this


class ErrNo(IntEnum):
    """Paddle Serving's pipeline error codes (the ones these services give)."""

    OK = 0
    NO_SERVICE = 3002
    INPUT_PARAMS_ERROR = 5000
    RPC_PACKAGE_ERROR = 8000
    UNKNOW = 10000  # sic: Paddle Serving's name; failures in pre-processing (e.g. bad base64)


@dataclass(frozen=True)
class Reply:
    """What one of PaddleOCR's scripts answers (it runs the ops of ``services.KINDS``' kind):
    the reply's key, and the Python-literal list its value holds, from the handler's result for
    one image."""

    key: str
    fetch: tuple[str, ...]
    value: Callable[[dict], list]


REPLIES = {  # web_service.py, web_service_det.py, web_service_rec.py
    "ocr": Reply("result", ("res", "rec_scores", "dt_boxes"),
                 lambda r: [((t, s), b) for t, s, b in zip(r["res"], r["rec_scores"],
                                                           r["dt_boxes"])]),
    "det": Reply("dt_boxes", ("dt_boxes",), lambda r: r["dt_boxes"]),
    "rec": Reply("res", ("res",), lambda r: r["res"]),
}


class Pipeline:
    """One request, checked as Paddle Serving checks it, answered by ``handler``: the
    ``value`` is ``str()`` of a list of plain Python values, so a client's ``eval`` reads it."""

    def __init__(self, handler: Handler, kind: str, max_image_pixels: int):
        self.handler = handler
        self.reply = REPLIES[kind]
        self.max_image_pixels = max_image_pixels

    def __call__(self, request: pb.Request) -> pb.Response:
        if request.name not in ("", SERVICE_NAME):
            return _failure(ErrNo.NO_SERVICE, "Failed to inference: Service name error.")
        if len(request.key) != len(request.value):
            return _failure(ErrNo.RPC_PACKAGE_ERROR, f"rpc package error: {len(request.key)} "
                                                     f"keys and {len(request.value)} values")
        feed = dict(zip(request.key, request.value))
        if "image" not in feed:
            return _failure(ErrNo.INPUT_PARAMS_ERROR,
                            'no "image" key: send {"key": ["image"], "value": ["<base64>"]}')
        try:
            image = decode_base64_image(feed["image"], self.max_image_pixels)
        except (BadRequest, PayloadTooLarge) as e:
            return _failure(ErrNo.UNKNOW, f"failed to preprocess: image: {e.message}")
        result = self.handler([image], list(self.reply.fetch))
        return pb.Response(err_no=ErrNo.OK, key=[self.reply.key],
                           value=[str(self.reply.value(result))])


def _failure(err_no: int, message: str) -> pb.Response:
    """An error reply: ``key`` and ``value`` empty."""
    return pb.Response(err_no=err_no, err_msg=message)


# -- HTTP: POST /{name}/{method}, the messages as JSON ------------------------------------------


def http_front(pipeline: Pipeline) -> Front:
    """The HTTP side for ``create_app``: the body is the ``Request`` as JSON (any Content-Type,
    or none, as PaddleOCR's client sends it), the URL's ``{name}`` its service name; every
    pipeline error is a 200 carrying ``err_no``, as Paddle Serving answers."""

    def answer(body: bytes, path: Mapping[str, str]) -> dict:
        request = pb.Request()
        try:
            json_format.Parse(body, request, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, RecursionError) as e:
            raise BadRequest(f"body is not a pipeline request: {_first_line(e)}; expected "
                             '{"key": ["image"], "value": ["<base64>"]}') from None
        request.name, request.method = path["name"], path["method"]
        return as_json(pipeline(request))

    return Front("/{name}/{method}", answer, error_body=_error_json,
                 shown_path=f"/{SERVICE_NAME}/prediction")


def as_json(response: pb.Response) -> dict:
    """The reply as Paddle Serving's gateway writes it: every field, proto field names."""
    return json_format.MessageToDict(response, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def _error_json(err_no: int, message: str) -> dict:
    """A refusal before the pipeline (body too large, busy, bad JSON) in the reply's shape."""
    return as_json(_failure(err_no, message))


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# -- gRPC: PipelineService ----------------------------------------------------------------------


class _Servicer(pb_grpc.PipelineServiceServicer):
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def inference(self, request: pb.Request, context) -> pb.Response:
        try:
            response = self.pipeline(request)
        except ServingError as e:
            response = _failure(e.err_no, e.message)
        except Exception as e:  # a bug: reported, the server goes on serving
            log.exception("pipeline request failed (logid %s)", request.logid)
            response = _failure(ErrNo.UNKNOW, f"internal error: {type(e).__name__}")
        metrics.RPC_REQUESTS.labels(self.pipeline.handler.name, str(response.err_no)).inc()
        return response


def serve_grpc(pipeline: Pipeline, host: str, port: int, settings: WebSettings,
               tls: ServerTls | None = None) -> grpc.Server:
    """The gRPC ``PipelineService`` on ``host:port``, started, with the HTTP front's limits:
    ``max_in_flight`` calls at once, ``max_queue`` more waiting (beyond that gRPC answers
    RESOURCE_EXHAUSTED), messages up to ``max_body_bytes``, a call without one of the API
    keys (``settings.auth``) ending UNAUTHENTICATED; TLS only with ``tls``. Raises
    PortInUse."""
    server = grpc.server(
        futures.ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="pipeline-rpc"),
        options=server_options(settings.max_body_bytes),
        maximum_concurrent_rpcs=settings.max_in_flight + settings.max_queue,
        interceptors=interceptors(settings.auth))
    pb_grpc.add_PipelineServiceServicer_to_server(_Servicer(pipeline), server)
    listen(server, f"{host}:{port}", tls and tls.grpc_credentials())
    server.start()
    return server
