"""The HTTP service (docs/design.md §2): ``POST /ocr/prediction`` plus health, readiness and
metrics.

The app knows nothing about OCR: a ``Handler`` turns decoded images into the ``result`` object.
Everything blocking (JSON parsing, image decoding, the handler) runs in a worker thread under
admission control, so the event loop keeps answering ``/health`` and refusing excess load.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Callable, Mapping, Protocol, Sequence

import anyio
import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pdserving import metrics
from pdserving.auth import Auth
from pdserving.errors import ServingError, Unavailable
from pdserving.imageio import decode_base64_images
from pdserving.web.limits import Admission, read_body
from pdserving.web.openapi import docs_routes
from pdserving.web.page import page_route
from pdserving.web.schemas import ErrorBody, Status, parse_prediction

PREDICT_PATH = "/ocr/prediction"
log = logging.getLogger(__name__)


class Handler(Protocol):
    name: str                   # "ocr" | "det" | "rec": in logs and metrics labels
    outputs: tuple[str, ...]    # fetch names it can produce; outputs[0] is the default
    result_type: object         # what __call__ returns, as a type (the OpenAPI document's)

    def __call__(self, images: list[np.ndarray], fetch: list[str]) -> dict:
        """Blocking: decoded 8-bit BGR images in, the ``result`` object out (docs/design.md
        §2.2). May raise ServingError subclasses (e.g. Unavailable when a model server is
        down)."""

    def ready(self) -> str | None:
        """None when ready to serve, else the reason (e.g. det endpoint unreachable)."""


@dataclass(frozen=True)
class WebSettings:
    """The limits that keep one service up under bad input and load (defaults: 2 cores)."""

    max_body_bytes: int = 32 << 20
    max_image_pixels: int = 40_000_000  # width * height of one image
    max_images: int = 16                # per request
    max_in_flight: int = 2              # requests processed at once (one per core)
    max_queue: int = 16                 # requests waiting beyond those; more get 503
    request_timeout: float = 60.0       # seconds from admission to answer; then 503
    retry_after: float = 1.0            # seconds, the Retry-After of 503 answers
    # POST /ocr, PaddleX's protocol (docs/design.md §2.7)
    max_pdf_pages: int = 100            # per PDF; more is refused (PaddleX reads the first 10)
    visualize: bool = True              # the default of a request's "visualize"
    url_hosts: tuple[str, ...] = ()     # hosts a "file" URL may name; none: URLs refused
    url_timeout: float = 10.0           # seconds to fetch a URL, all of it
    auth: Auth = Auth()                 # API keys (docs/design.md §2.11); none: open

    def timed_out(self) -> Unavailable:
        """The 503 of a request past ``request_timeout``."""
        return Unavailable(f"request timed out after {self.request_timeout:g} s",
                           self.retry_after)


def error_body(err_no: int, message: str) -> ErrorBody:
    """The error body of docs/design.md §2.3: the message in both ``result`` and ``err_msg``."""
    return ErrorBody(result=message, err_no=err_no, err_msg=message)


@dataclass(frozen=True)
class Front:
    """A request form other than that of docs/design.md §2, served with the same limits,
    health, metrics and error handling: e.g. the 2020 ``WebService``, whose hooks get the feed
    as sent, or Paddle Serving's pipeline protocol."""

    path: str  # the POST route; may hold {parameters}
    answer: Callable[[bytes, Mapping[str, str]], dict]  # blocking: body, path params -> reply
    error_body: Callable[[int, str], dict] = error_body  # err_no, message -> an error's JSON
    shown_path: str = ""  # the URL path the ready line shows (default: ``path``)


def create_app(handler: Handler, settings: WebSettings = WebSettings(),
               on_shutdown: Sequence[Callable[[], None]] = (), *,
               front: Front | None = None) -> Starlette:
    """The ASGI app serving ``handler`` on ``POST /ocr/prediction`` and the other protocols
    (``pdserving.web.protocols``), or only as ``front`` says; ``on_shutdown`` callbacks run (in
    order, each even if another failed) after in-flight requests have finished at server
    shutdown."""
    admission = Admission(settings.max_in_flight, settings.max_queue, settings.retry_after)
    metrics.IN_FLIGHT.labels(handler.name).set_function(lambda: admission.running)
    metrics.QUEUED.labels(handler.name).set_function(lambda: admission.waiting)
    from pdserving.web import protocols  # it imports this module (Front): not at the top

    own_form = front is not None
    fronts = [front] if front else [Front(PREDICT_PATH, partial(_predict, handler, settings)),
                                    *protocols.fronts(handler, settings)]

    def endpoint(front: Front):
        async def predict(request: Request) -> Response:
            settings.auth.check(request.headers)  # before the request takes a place
            with admission.ticket():
                with anyio.move_on_after(settings.request_timeout):
                    body = await read_body(request, settings.max_body_bytes)
                    answer = partial(front.answer, body, request.path_params)
                    return JSONResponse(await admission.run(answer))
            raise settings.timed_out()
        return predict

    async def ready(request: Request) -> Response:
        settings.auth.check_status(request.headers)
        reason = await run_in_threadpool(handler.ready)
        if reason:
            return _error(request, 503, 503, f"not ready: {reason}",
                          {"Retry-After": _seconds(settings.retry_after)})
        return JSONResponse(Status(status="ready"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        admission.close()
        for callback in on_shutdown:
            try:
                await run_in_threadpool(callback)
            except Exception:
                log.exception("%s: shutdown callback %r failed", handler.name, callback)

    routes = [
        *(Route(f.path, endpoint(f), methods=["POST"]) for f in fronts),
        Route("/health", _health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
    ]
    if not own_form:  # a front with its own request form would need a page and docs of its own
        routes.append(page_route(handler.name, PREDICT_PATH, handler.outputs,
                                 settings.auth.on))
        routes.extend(docs_routes(handler, settings, PREDICT_PATH, [f.path for f in fronts[1:]]))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_RequestMetrics, service=handler.name)],
        exception_handlers={ServingError: _serving_error, HTTPException: _http_error,
                            Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.service = handler.name
    app.state.auth = settings.auth
    app.state.predict_path = fronts[0].shown_path or fronts[0].path
    app.state.error_bodies = {f.path: f.error_body for f in fronts}
    app.state.error_body = fronts[0].error_body
    return app


def _predict(handler: Handler, settings: WebSettings, body: bytes,
             path_params: Mapping[str, str]) -> dict:
    """The blocking part of a prediction: parse, decode every image, call the handler."""
    request = parse_prediction(body, handler.name, handler.outputs, settings.max_images)
    images = decode_base64_images(request.images, settings.max_image_pixels, "feed[{i}].image")
    return {"result": handler(images, request.fetch)}


async def _health(request: Request) -> Response:
    return JSONResponse(Status(status="alive"))


async def _metrics(request: Request) -> Response:
    request.app.state.auth.check_status(request.headers)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _seconds(value: float) -> str:
    return str(max(1, math.ceil(value)))


def _error(request: Request, status: int, err_no: int, message: str,
           headers: dict | None = None, fields: Mapping = MappingProxyType({})) -> Response:
    """An error in the form of the route's protocol (``Front.error_body``; the app's first
    front's off its routes), with ``fields`` added."""
    state = request.app.state
    route = getattr(request.scope.get("route"), "path", None)
    error_body = state.error_bodies.get(route, state.error_body)
    return JSONResponse({**error_body(err_no, message), **fields}, status, headers)


async def _serving_error(request: Request, exc: ServingError) -> Response:
    headers = dict(exc.headers)
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = _seconds(exc.retry_after)
    return _error(request, exc.status, exc.err_no, exc.message, headers, exc.fields)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own 404 and 405 (with its Allow header), as JSON."""
    return _error(request, exc.status_code, exc.status_code,
                  f"{exc.detail}: {request.method} {request.url.path}", exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug: a generic message to the client; the server re-raises, and uvicorn logs the
    traceback."""
    return _error(request, 500, 500, "internal server error")


class _RequestMetrics:
    """Counts every HTTP response by route (its template, e.g. ``/{name}/{method}``) and
    status, and times it."""

    def __init__(self, app: ASGIApp, service: str):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception ends as a 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_note)
        finally:  # the router notes the route it matched in the scope
            route = getattr(scope.get("route"), "path", "other")
            metrics.REQUESTS.labels(self.service, route, str(status)).inc()
            metrics.LATENCY.labels(self.service, route).observe(time.perf_counter() - start)
