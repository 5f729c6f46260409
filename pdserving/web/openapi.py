"""``GET /openapi.json`` and ``GET /docs``: the service described as OpenAPI 3.1, and Swagger UI.

The schemas are generated (pydantic) from the types the code parses and answers with: the
request type of ``pdserving.web.schemas``, the handler's ``result_type``, ``ErrorBody``,
``Status``; the error statuses from ``pdserving.errors``. Swagger UI's files come from the
``swagger-ui-py`` package and are served from this process, so ``/docs`` works offline.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path
from typing import Sequence

from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from typing_extensions import TypedDict

import pdserving
from pdserving.errors import (BadRequest, PayloadTooLarge, ServingError, Unauthorized,
                              Unavailable)
from pdserving.web import hub, paddlex
from pdserving.web.schemas import ErrorBody, Status, request_type

_REF = "#/components/schemas/{model}"


class _Document:
    """An OpenAPI document being written: named schemas go to ``components``."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict] = {}

    def schema(self, tp: object) -> dict:
        """A reference to ``tp``'s schema (named by its class), or the schema itself."""
        schema = TypeAdapter(tp).json_schema(ref_template=_REF)
        self.schemas.update(schema.pop("$defs", {}))
        name = getattr(tp, "__name__", None)
        if name and schema.get("title") == name:
            self.schemas[name] = schema
            return {"$ref": _REF.format(model=name)}
        return schema

    def json(self, description: str, tp: object, headers: dict | None = None) -> dict:
        response = {"description": description,
                    "content": {"application/json": {"schema": self.schema(tp)}}}
        if headers:
            response["headers"] = headers
        return response

    def error(self, exc: type[ServingError], description: str | None = None) -> dict:
        """The error body; the description is the exception's docstring unless given."""
        headers = None
        if exc is Unavailable:
            headers = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                       "schema": {"type": "integer"}}}
        return self.json(description or exc.__doc__, ErrorBody, headers)


# The two ways a key may be sent (docs/design.md §2.11).
SECURITY_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}


def _content(media_type: str, description: str) -> dict:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def document(handler, settings, path: str, protocols: Sequence[str] = ()) -> dict:
    """The OpenAPI 3.1 document of an app serving ``handler`` on ``POST path``, the other
    ``protocols`` (their paths: ``/ocr``, ``/predict/<module>``) and its page on ``GET /``,
    with the limits of ``settings`` (``WebSettings``)."""
    doc = _Document()
    name = handler.name
    answer = TypedDict(f"{name.capitalize()}Answer", {"result": handler.result_type})  # type: ignore
    predict = {
        "summary": f"Run the {name} service on images",
        "operationId": f"{name}_prediction",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": doc.schema(request_type(name, handler.outputs, settings.max_images))}}},
        "responses": {
            "200": doc.json("The outputs asked for in `fetch`.", answer),
            "400": doc.error(BadRequest),
            "413": doc.error(PayloadTooLarge, (
                f"Over a limit: a body of {settings.max_body_bytes} bytes, an image of "
                f"{settings.max_image_pixels} pixels, {settings.max_images} images a request.")),
            "500": doc.error(ServingError, "A bug in the service; the server logs it."),
            "503": doc.error(Unavailable, (
                f"Overloaded ({settings.max_in_flight + settings.max_queue} requests already "
                f"in, or this one took over {settings.request_timeout:g} s), or a model "
                "server it needs is down: try again later.")),
        },
    }
    paths = {
        path: {"post": predict},
        **{p: {"post": _protocol(doc, p, settings)} for p in protocols},
        "/health": {"get": {"summary": "Liveness", "operationId": "health",
                            "responses": {"200": doc.json("The process serves HTTP.", Status)}}},
        "/ready": {"get": {"summary": "Readiness", "operationId": "ready", "responses": {
            "200": doc.json("The models (and model servers) answer.", Status),
            "503": doc.error(Unavailable, "Not ready yet: the message says why.")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                             "responses": {"200": _content("text/plain",
                                                           "The text exposition format.")}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {}}}}}},
        "/docs": {"get": {"summary": "This document in Swagger UI", "operationId": "docs",
                          "responses": {"200": _content("text/html", "Swagger UI")}}},
        "/": {"get": {"summary": "A page to try the service in a browser", "operationId": "page",
                      "responses": {"200": _content("text/html", "The page")}}},
    }
    components = {"schemas": dict(sorted(doc.schemas.items()))}
    security = {}
    if settings.auth.on:  # Swagger UI's "Authorize" then sends the key
        components["securitySchemes"] = SECURITY_SCHEMES
        security = {"security": [{name: []} for name in SECURITY_SCHEMES]}
        open_paths = ["/health", "/openapi.json", "/docs", "/"]
        if settings.auth.public_metrics:
            open_paths += ["/ready", "/metrics"]
        for p, operations in paths.items():
            for operation in operations.values():
                if p in open_paths:
                    operation["security"] = []
                elif p in (path, "/ready", "/metrics"):  # the others' 401 is in their shape
                    operation["responses"]["401"] = doc.error(
                        Unauthorized, "No API key, or not one of the service's.")
    return {
        "openapi": "3.1.0",
        "info": {"title": f"pdserving {name} service", "version": pdserving.__version__,
                 "description": "PaddleOCR's Paddle Serving deployment, re-created. The "
                                "protocol is described in docs/design.md §2 of pdserving's "
                                "source."},
        "paths": paths,
        "components": components,
        **security,
    }


def _protocol(doc: _Document, path: str, settings) -> dict:
    """The operation of ``POST path``, PaddleX's ``/ocr`` or a PaddleHub module."""
    if path == paddlex.PATH:
        return {
            "summary": "OCR of an image or a PDF, in PaddleX's (PaddleOCR 3.x's) protocol",
            "operationId": "paddlex_ocr",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": doc.schema(paddlex.PaddlexRequest)}}},
            "responses": {
                "200": doc.json("One entry of ocrResults per page.", paddlex.PaddlexAnswer),
                "413": doc.json(f"A body over {settings.max_body_bytes} bytes.",
                                paddlex.PaddlexError),
                "422": doc.json(f"Bad input: not JSON, a bad field, a file that is not an "
                                f"image or a PDF, a PDF over {settings.max_pdf_pages} pages, "
                                "a URL not allowed.", paddlex.PaddlexError),
                "503": doc.json("Overloaded, or a model server is down: try again later.",
                                paddlex.PaddlexError)}}
    module = path.rsplit("/", 1)[1]
    answer = TypedDict(f"{module}Answer", {"msg": str, "results": list[list[hub.RESULTS[module]]],
                                           "status": str})  # type: ignore
    return {
        "summary": f"PaddleHub Serving's {module} module (PaddleOCR deploy/hubserving)",
        "operationId": f"hub_{module}",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": doc.schema(hub.HubRequest)}}},
        "responses": {"200": doc.json('status "000"', answer),
                      **{str(code): doc.json(f'status "{hub.FAILED}"', hub.HubError)
                         for code in (400, 413, 503)}}}


def docs_routes(handler, settings, path: str, protocols: Sequence[str] = ()
                ) -> list[BaseRoute]:
    """``/openapi.json``, ``/docs`` and Swagger UI's files under ``/docs/static``."""
    spec = document(handler, settings, path, protocols)
    html = (resources.files(__package__) / "static" / "docs.html").read_text("utf-8")
    swagger = Path(importlib.util.find_spec("swagger_ui").submodule_search_locations[0])

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(spec)

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(html)

    return [Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Mount("/docs/static", StaticFiles(directory=swagger / "static"))]
