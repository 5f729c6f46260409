"""The model server's HTTP/1.1 side: ``POST /GeneralModelService/inference`` as Paddle Serving
0.9's brpc server answered it, for its ``HttpClient`` (docs/design.md §4.4).

The body is the ``Request`` as JSON (protobuf's JSON mapping) or as binary protobuf, as its
Content-Type says, and may be gzip-compressed; the reply is the ``Response`` in the same
encoding, gzip-compressed if the client accepts it. Requests are answered by the same
``respond`` as gRPC calls, so checks, errors and engine are one; the HTTP status tells a bad
request (4xx) from a failure of ours (500), and the body always carries ``err_no``/``err_msg``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import math
import socket
import threading
import zlib
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

import uvicorn
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pdserving.auth import Auth
from pdserving.errors import BadRequest, PayloadTooLarge, ServingError
from pdserving.net import wait_until
from pdserving.web.limits import read_body
from pdserving.tls import ServerTls
from pdserving.web import runner
from pdserving.proto import general_model_service_pb2 as pb

log = logging.getLogger(__name__)

PATH = "/GeneralModelService/inference"
JSON = "application/json"
PROTO = "application/proto"  # HttpClient compares the reply's Content-Type with == to this
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # protobuf's JSON names
GZIP_LEVEL = 1  # replies are mostly floats, which no level compresses much: take the fastest

# ``respond(read)``: the Response to the Request ``read()`` returns, and its HTTP status.
Respond = Callable[[Callable[[], pb.Request]], tuple[pb.Response, int]]


class HttpError(ServingError):
    """A request the HTTP layer refuses: unknown path (404), method (405), encoding (415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = self.err_no = status


@dataclass(frozen=True)
class Wire:
    """How one exchange is encoded: JSON or protobuf, gzip or not, each way."""

    proto: bool = False
    gzip_in: bool = False
    gzip_out: bool = False

    @classmethod
    def of(cls, headers: Headers) -> tuple[Wire, HttpError | None]:
        """The exchange's encoding, and the reason it cannot be read (if so). A body with no
        Content-Type is taken as JSON; the reply to an unreadable one is JSON too."""
        media = headers.get("content-type", JSON).split(";")[0].strip().lower()
        coding = headers.get("content-encoding", "identity").strip().lower()
        accepted = {c.split(";")[0].strip().lower()
                    for c in headers.get("accept-encoding", "").split(",")}
        wire = cls(media == PROTO, coding == "gzip", "gzip" in accepted)
        if media not in (JSON, PROTO):
            return wire, HttpError(415, f"Content-Type {media!r}: send {JSON} or {PROTO}")
        if coding not in ("gzip", "identity"):
            return wire, HttpError(415, f"Content-Encoding {coding!r}: send gzip or none")
        return wire, None

    def decode(self, body: bytes, limit: int) -> pb.Request:
        if self.gzip_in:
            body = gunzip(body, limit)
        if self.proto:
            try:
                return pb.Request.FromString(body)
            except DecodeError as e:
                raise BadRequest(f"body is not a protobuf Request: {e}") from None
        try:
            return _request_from_json(body)
        except (json_format.ParseError, ValueError, RecursionError) as e:
            raise BadRequest(f"body is not a JSON Request: {e}") from None

    def encode(self, response: pb.Response, status: int) -> Response:
        if self.proto:
            body = response.SerializeToString()
        else:
            body = json.dumps(to_json(response), separators=(",", ":")).encode()
        headers = {}
        if self.gzip_out:
            body = gzip.compress(body, GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        return Response(body, status, headers, media_type=PROTO if self.proto else JSON)


# Number lists that HttpClient fills: moved into the message whole (see _request_from_json).
_BULK = ("float_data", "int64_data", "int_data", "float64_data")


def _request_from_json(body: bytes) -> pb.Request:
    """protobuf's JSON mapping of a Request, fast for big tensors: ``json_format`` converts one
    number at a time (2.6 s for a 960x960 det input), where ``extend`` takes a whole list in C
    (0.5 s with the JSON parsing). Lists ``extend`` refuses (numbers written as strings, as
    the mapping allows) go through ``json_format`` after all."""
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError(f"a JSON object is needed, not {type(doc).__name__}")
    moved = []
    tensors = doc.get("tensor")
    for i, tensor in enumerate(tensors if isinstance(tensors, list) else ()):
        for field in _BULK:
            if isinstance(tensor, dict) and isinstance(tensor.get(field), list):
                moved.append((i, field, tensor.pop(field)))
    request = json_format.ParseDict(doc, pb.Request())
    try:
        for i, field, values in moved:
            getattr(request.tensor[i], field).extend(values)
    except (TypeError, ValueError):
        return json_format.Parse(body, pb.Request())
    return request


def gunzip(body: bytes, limit: int) -> bytes:
    """``body`` decompressed, refusing more than ``limit`` bytes out (a gzip bomb is small)."""
    out = bytearray()
    try:
        while body:  # one gzip member after another, as gzip.decompress reads them
            member = zlib.decompressobj(wbits=31)
            out += member.decompress(body, limit + 1 - len(out))
            if len(out) > limit:
                raise PayloadTooLarge(f"body over {limit} bytes once decompressed")
            if not member.eof:
                raise BadRequest("gzip body is truncated")
            body = member.unused_data
    except zlib.error as e:
        raise BadRequest(f"body is not gzip: {e}") from None
    return bytes(out)


def to_json(message: Message) -> dict:
    """``message`` as brpc's pb2json writes it: the .proto's field names, 64-bit integers as
    JSON numbers (protobuf's own mapping writes strings), fields left at their default out.

    Written here rather than with ``json_format.MessageToDict``: that converts a float32 at a
    time (seconds for a det map), where a repeated field's ``list()`` is one C loop.
    """
    out = {}
    for field, value in message.ListFields():
        repeated = field.is_repeated
        values = list(value) if repeated else [value]
        if field.message_type is not None:
            values = [to_json(v) for v in values]
        elif field.type == FieldDescriptor.TYPE_BYTES:
            values = [base64.b64encode(v).decode() for v in values]
        elif field.cpp_type in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE) \
                and not math.isfinite(sum(values)):  # NaN, inf anywhere
            values = [v if math.isfinite(v) else NON_FINITE[repr(v)] for v in values]
        out[field.name] = values if repeated else values[0]
    return out


def create_app(respond: Respond, pool: Executor, max_body_size: int,
               auth: Auth = Auth()) -> Starlette:
    """The HTTP app; blocking work (decoding, the model, encoding) runs in ``pool``. With
    ``auth`` on, a request without one of its keys gets 401 (``err_no`` 401) in the encoding
    it asked for, before its body is read."""

    async def answer(wire: Wire, read: Callable[[], pb.Request]) -> Response:
        def run() -> Response:
            response, status = respond(read)
            try:
                return wire.encode(response, status)
            except Exception as e:  # a bug of ours: still a Response, and in the log
                log.exception("cannot encode the reply (log_id %s)", response.log_id)
                return wire.encode(pb.Response(log_id=response.log_id, err_no=500,
                                               err_msg=f"cannot encode the reply: {e}"), 500)
        return await asyncio.get_running_loop().run_in_executor(pool, run)

    async def inference(request: Request) -> Response:
        wire, error = Wire.of(request.headers)
        try:
            auth.check(request.headers)
            if error:
                raise error
            body = await read_body(request, max_body_size)
        except ServingError as e:  # uvicorn drains a body left unread; the connection stays
            response = await answer(wire, failing(e))
            response.headers.update(e.headers)  # WWW-Authenticate on a 401
            return response
        return await answer(wire, lambda: wire.decode(body, max_body_size))

    async def refused(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:
            message = f"method {request.method} not allowed: POST {PATH}"
        else:
            message = f"no such path {request.url.path}: POST {PATH}"
        wire, _ = Wire.of(request.headers)
        response = await answer(wire, failing(HttpError(exc.status_code, message)))
        response.headers.update(exc.headers or {})  # Allow: POST
        return response

    return Starlette(routes=[Route(PATH, inference, methods=["POST"])],
                     exception_handlers={HTTPException: refused})


def failing(error: ServingError) -> Callable[[], pb.Request]:
    """A ``read`` for ``respond`` that reports ``error`` instead of giving a request."""
    def read() -> pb.Request:
        raise error
    return read


class HttpServer:
    """``app`` under uvicorn in a thread of this process, on the unix socket ``path`` (TLS
    only, with ``tls``)."""

    def __init__(self, app: Starlette, path: str, tls: ServerTls | None = None):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.bind(path)
        self.server = uvicorn.Server(runner.config(
            app, tls, ws="none", lifespan="off", log_config=None, access_log=False,
            server_header=False))
        self._thread = threading.Thread(target=self.server.run, args=([self.socket],),
                                        name="pdserving-http", daemon=True)

    def start(self, timeout: float = 10.0) -> "HttpServer":
        self._thread.start()
        wait_until(lambda: self.server.started or not self._thread.is_alive(), timeout,
                   "HTTP side of the model server")
        if not self.server.started:
            raise RuntimeError("the HTTP side of the model server did not start")
        return self

    def stop(self, grace: float | None) -> None:
        """Stop taking requests; let those in flight finish for up to ``grace`` s."""
        # Not 0: uvicorn's wait would time out at once, in-flight requests or not, and log it.
        self.server.config.timeout_graceful_shutdown = max(grace or 0, 0.1)
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join()
        self.socket.close()
