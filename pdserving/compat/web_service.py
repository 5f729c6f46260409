"""``paddle_serving_server.web_service.WebService``: the class the 2020 scripts subclass.

A subclass overrides ``preprocess(feed, fetch) -> (feed, fetch)`` and ``postprocess(feed,
fetch, fetch_map) -> result``; per request the service calls the one, runs its model on what it
returned (a dict is one sample, a list of dicts a batch) and answers ``{"result": <the
other's return>}`` on ``POST /<name>/prediction``. Underneath is pdserving's web layer
(``pdserving.web.app``): body and image limits, admission control, JSON errors with status
codes, ``/health``, ``/ready`` and ``/metrics``.

The 2020 det scripts keep a request's state on ``self`` between the two hooks, which mixed up
concurrent requests in the original (PaddleOCR #8578). Here the hooks of one service run for one
request at a time unless the subclass sets ``thread_safe = True``.

The 2020 scripts take no flags: the service's API keys are those of ``PDSERVING_API_KEYS``
(docs/design.md §2.11), which its own model server and the client to it share.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any, Callable, Mapping

import numpy as np
from starlette.applications import Starlette

from pdserving import auth
from pdserving.compat.local_predict import Debugger, fail
from pdserving.engine import EngineError, check_options, engine_options
from pdserving.errors import ServingError
from pdserving.launcher import ServerProcess, start_model_server
from pdserving.package import ensure_model
from pdserving.rpc.client import Client
from pdserving.tls import ServerTls, TlsError, server_tls_from_env
from pdserving.web.app import Front, WebSettings, create_app
from pdserving.web.runner import run
from pdserving.web.schemas import load_request

log = logging.getLogger(__name__)

RPC_PORT = 12000  # run_rpc_service's model server: the first free port from here, as the original


class HookFailed(ServingError):
    """The subclass's code (or the model call it asked for) raised: a bug, answered 500."""


class WebService:
    thread_safe = False       # True: the hooks keep no request state on self and may overlap
    default_device = "cpu"    # paddle_serving_server_gpu's WebService: "gpu"

    def __init__(self, name: str = "default_service"):
        self.name = name
        self.model_config: str | os.PathLike | None = None
        self.port = 9393
        self.tls: ServerTls | None = None
        self.device = self.default_device
        self.gpus: list[int] = []
        self.gpuid = 0
        try:
            self.settings = WebSettings(auth=auth.load())
        except auth.AuthError as e:
            raise fail(e) from None
        self.client: Client | Debugger | None = None
        self._model_server: ServerProcess | None = None
        self._hooks = threading.Lock()

    # -- set-up, in the order the 2020 scripts call it -------------------------------------------

    def load_model_config(self, model_config: str | os.PathLike) -> None:
        """The served model's folder (a bundled one is written if missing)."""
        try:
            self.model_config = ensure_model(model_config)
        except FileNotFoundError as e:
            raise fail(e) from None

    def set_gpus(self, gpus: str | int) -> None:
        self.gpus = [int(g) for g in str(gpus).split(",") if g.strip()]

    def prepare_server(self, workdir: str = "", port: int = 9393, device: str | None = None,
                       gpuid: int = 0, tls: ServerTls | None = None, **_ignored) -> None:
        """Port and device of the web service, and its TLS (else from ``PDSERVING_TLS_CERT``
        and its fellows, docs/design.md §2.10). (``workdir`` and the brpc tuning arguments are
        accepted and ignored: nothing is written to disk.)"""
        self.port = port
        self.device = device or self.default_device
        self.gpuid = gpuid
        try:
            self.tls = tls or server_tls_from_env()
        except TlsError as e:
            raise fail(e) from None

    def run_rpc_service(self) -> None:
        """The model behind pdserving's gRPC model server, a child process on the first free
        port from 12000; ``self.client`` is a ``Client`` connected to it."""
        model_dir = self._model_dir()
        options = engine_options(None, self._gpu_ids())
        try:  # here, not in the child: its multi-line failure would be all the user sees
            check_options(options)
            server = start_model_server(model_dir, RPC_PORT, options, auth=self.settings.auth)
        except (EngineError, RuntimeError) as e:
            raise fail(e) from None
        self._model_server = server
        client = Client()
        client.load_client_config(model_dir)
        client.connect([server.endpoint], api_key=self.settings.auth.client_key)
        self.client = client

    def run_debugger_service(self, gpu: bool = False) -> None:
        """The model in this process (``Debugger``)."""
        model_dir = self._model_dir()
        gpu_ids = self._gpu_ids(gpu)
        debugger = Debugger()  # checks the device as it loads (one line on failure)
        debugger.load_model_config(model_dir, gpu=bool(gpu_ids), gpu_id=gpu_ids)
        self.client = debugger

    def run_web_service(self) -> None:
        """Serve ``POST /<name>/prediction`` on 0.0.0.0:<port> until SIGTERM or Ctrl-C."""
        code = run(self.app(), "0.0.0.0", self.port, tls=self.tls)
        self.close()
        if code:
            raise SystemExit(code)

    def app(self) -> Starlette:
        """The ASGI app ``run_web_service`` serves (for another ASGI server, or a test)."""
        if self.client is None:
            raise fail("call run_rpc_service() or run_debugger_service() before "
                       "run_web_service()")
        return create_app(self, self.settings, on_shutdown=[self.close],
                          front=Front(f"/{self.name}/prediction", self.answer))

    # -- the hooks a subclass overrides ----------------------------------------------------------

    def preprocess(self, feed=None, fetch=None):
        """The model's feed and the names to fetch, from the request's ``feed`` and ``fetch``."""
        return feed, fetch

    def postprocess(self, feed=None, fetch=None, fetch_map=None):
        """The ``result`` to answer, from the model's outputs (by default: all of them)."""
        return fetch_map

    # -- serving ---------------------------------------------------------------------------------

    def answer(self, body: bytes, path_params: Mapping[str, str]) -> dict:
        """One request (blocking): the hooks around a model call, JSON-ready."""
        request = load_request(body)
        with contextlib.nullcontext() if self.thread_safe else self._hooks:
            return {"result": _plain(self._answer(request))}

    def _answer(self, request: dict) -> Any:
        feed, fetch = self._call(self.preprocess, feed=request["feed"], fetch=request["fetch"])
        if isinstance(feed, dict):
            feed.pop("fetch", None)
        # Nothing to run (e.g. no text found): the original answered "empty input"; here
        # postprocess sees an empty fetch_map and answers as it does for any image.
        fetch_map = self._call(self.client.predict, feed=feed, fetch=fetch) if feed else {}
        return self._call(self.postprocess, feed=request["feed"], fetch=fetch,
                          fetch_map=fetch_map)

    def _call(self, fn: Callable, **kwargs) -> Any:
        """``fn(**kwargs)``; a failure that is not already a client-facing error is a 500 whose
        traceback goes to the log."""
        try:
            return fn(**kwargs)
        except ServingError:
            raise
        except Exception as e:
            where = f"{type(self).__name__}.{fn.__name__}"
            log.exception("%s failed", where)
            raise HookFailed(f"{where} failed: {type(e).__name__}: {e}") from None

    def ready(self) -> str | None:
        """For ``/ready``: the model server started by ``run_rpc_service`` answers."""
        if isinstance(self.client, Client) and not self.client.connection.ping():
            return f"model server {self._model_server.endpoint} unreachable"
        return None

    def close(self) -> None:
        """Stop the model server or the in-process model's workers."""
        if self._model_server is not None:
            self._model_server.stop()
            self._model_server = None
        if isinstance(self.client, Debugger):
            self.client.close()

    # -- helpers ---------------------------------------------------------------------------------

    def _model_dir(self) -> os.PathLike:
        if self.model_config is None:
            raise fail("call load_model_config(model_dir) first")
        return self.model_config

    def _gpu_ids(self, gpu: bool = False) -> tuple[int, ...]:
        """The GPUs asked for (``set_gpus``, else ``prepare_server``'s), none for the CPU."""
        if not (gpu or self.device == "gpu"):
            return ()
        return tuple(self.gpus) or (self.gpuid,)


def _plain(value: Any) -> Any:
    """A hook's result as JSON types: the 2020 hooks return numpy arrays and scalars."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


class GpuWebService(WebService):
    """``paddle_serving_server_gpu.web_service.WebService``: the same, on GPU unless told."""

    default_device = "gpu"
