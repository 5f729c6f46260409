"""Model server clients: ``Client`` (Paddle Serving's API) and ``RemoteModel`` (an engine Model).

Several endpoints share one gRPC channel with round-robin balancing and a retry policy for
UNAVAILABLE, so calls spread over the servers and a dead one is skipped without a failed call.
Reconnect back-off is kept short so a restarted server is used again within about a second.

Two gRPC settings matter for that. A call is retried only while its request fits the retry
buffer (256 kB by default; a det batch is megabytes), so the buffer takes the largest message.
``grpc.min_reconnect_backoff_ms`` is not a back-off but the time a connection attempt may take,
left at 20 s: a live server slow to shake hands on a busy machine stays CONNECTING, which holds
calls, rather than TRANSIENT_FAILURE, which fails them ("connections to all backends failing")
when the other server is down. A refused connection still fails at once.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Sequence

import grpc
import numpy as np

from pdserving import modelconf
from pdserving.auth import bearer, client_key
from pdserving.errors import Unavailable
from pdserving.modelconf import Var
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.proto import general_model_service_pb2_grpc as pb_grpc
from pdserving.rpc import MAX_BODY_SIZE, message_limits
from pdserving.rpc.codec import from_tensor, to_tensor
from pdserving.tls import ClientTls

DEFAULT_TIMEOUT_S = 20.0
SERVICE = "baidu.paddle_serving.predictor.general_model.GeneralModelService"
SERVICE_CONFIG = json.dumps({
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{"service": SERVICE}],
        "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
    }],
})


class RpcError(RuntimeError):
    """The model server answered with an error (``err_no`` != 0) or the call failed."""

    def __init__(self, message: str, err_no: int = -1):
        super().__init__(message)
        self.err_no = err_no


class KeyRefused(RpcError):
    """The model server wants an API key we did not send, or not the one we sent."""


def channel_target(endpoints: Sequence[str]) -> str:
    """One gRPC target for all endpoints: ``ipv4:a:p1,b:p2`` (host names resolved now)."""
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    if not endpoints:
        raise ValueError("no endpoint to connect to")
    if len(endpoints) == 1:
        return endpoints[0]
    addrs = []
    for ep in endpoints:
        host, _, port = ep.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"endpoint {ep!r} is not host:port")
        addrs.append(f"{socket.gethostbyname(host)}:{port}")
    return "ipv4:" + ",".join(addrs)


def open_channel(endpoints: Sequence[str], options: list, tls: ClientTls | None = None,
                 ) -> grpc.Channel:
    """A channel to ``endpoints`` (see ``channel_target``), plain or, with ``tls``, TLS."""
    target = channel_target(endpoints)
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    # Several endpoints make an address list, which names no server: the first one's host is
    # the name their certificates are checked against.
    host = ([endpoints] if isinstance(endpoints, str) else endpoints)[0].rpartition(":")[0]
    return grpc.secure_channel(target, tls.grpc_credentials(), options=[
        *options, ("grpc.ssl_target_name_override", host.strip("[]"))])


class Connection:
    """One channel to one or more model servers, turning failures into our exceptions.
    ``api_key`` (default: ``PDSERVING_API_KEY``) goes with every call, as metadata
    ``authorization: Bearer KEY``."""

    def __init__(self, endpoints: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S,
                 max_body_size: int = MAX_BODY_SIZE, name: str = "model server",
                 tls: ClientTls | None = None, api_key: str | None = None):
        self.endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        self.timeout = timeout
        self.name = name
        self.metadata = tuple(bearer(client_key(api_key)).items())
        self.channel = open_channel(self.endpoints, self.options(max_body_size), tls)
        self.stub = pb_grpc.GeneralModelServiceStub(self.channel)

    @staticmethod
    def options(max_body_size: int) -> list[tuple[str, str | int]]:
        return [
            ("grpc.service_config", SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            *message_limits(max_body_size),
            ("grpc.per_rpc_retry_buffer_size", max_body_size),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # A server known by name is looked up again when its connection fails, at most once
            # a second (gRPC's default: every 30 s): a restarted container comes back on a new
            # address (deploy/compose.yaml's det).
            ("grpc.dns_min_time_between_resolutions_ms", 1000),
        ]

    def call(self, request: pb.Request) -> pb.Response:
        """``inference``; Unavailable when no server answers, RpcError for any other failure."""
        try:
            response = self.stub.inference(request, timeout=self.timeout,
                                           metadata=self.metadata)
        except grpc.RpcError as e:
            code = e.code()
            where = f"{self.name} {', '.join(self.endpoints)}"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"{where} unavailable: {e.details()}") from None
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise KeyRefused(f"{where}: {code.name}: {e.details()}") from None
            raise RpcError(f"{where}: {code.name}: {e.details()}") from None
        if response.err_no:
            raise RpcError(f"{self.name} error {response.err_no}: "
                           f"{response.err_msg}", response.err_no)
        return response

    def ping(self, timeout: float = 1.0) -> bool:
        """True if a server answers a (deliberately empty) request within ``timeout``."""
        return self.problem(timeout) is None

    def problem(self, timeout: float = 1.0) -> str | None:
        """Why no server answers a (deliberately empty) request within ``timeout``; None if
        one does."""
        try:
            self.stub.debug(pb.Request(), timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                return "refuses our API key"
            return "unreachable"
        return None

    def close(self) -> None:
        self.channel.close()


def outputs_to_dict(response: pb.Response) -> dict[str, np.ndarray]:
    """``{alias: array}`` plus ``"<alias>.lod"`` for outputs that carry LoD."""
    result: dict[str, np.ndarray] = {}
    for t in response.outputs[0].tensor if response.outputs else ():
        key = t.alias_name or t.name
        result[key] = from_tensor(t)
        if t.lod:
            result[key + ".lod"] = np.array(t.lod, dtype=np.int32)
    return result


class RemoteModel:
    """A model on model servers, as an engine ``Model``: ``batch -> first fetch output``.

    ``name`` is how errors call the servers, e.g. "det model server" gives
    "det model server 127.0.0.1:9293 unavailable: ...".
    """

    def __init__(self, endpoints: Sequence[str], feed_name: str = "x",
                 fetch_name: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 name: str = "model server", tls: ClientTls | None = None,
                 api_key: str | None = None):
        self.feed_name = feed_name
        self.fetch_name = fetch_name
        self.connection = Connection(endpoints, timeout=timeout, name=name, tls=tls,
                                     api_key=api_key)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        request = pb.Request(tensor=[to_tensor(batch, alias_name=self.feed_name)],
                             fetch_var_names=[self.fetch_name] if self.fetch_name else [])
        try:
            response = self.connection.call(request)
        except KeyRefused as e:  # a setting for the operator to fix: said so, not a 500
            where = f"{self.connection.name} {', '.join(self.connection.endpoints)}"
            raise Unavailable(f"{where} refused our API key ({e})") from None
        return from_tensor(response.outputs[0].tensor[0])

    def ready(self, timeout: float = 1.0) -> bool:
        return self.connection.ping(timeout)

    def close(self) -> None:
        self.connection.close()


def check_request(feed, fetch, known_fetch) -> tuple[list[dict], list[str]]:
    """Paddle Serving's checks of ``predict(feed, fetch)``, with its messages: the feed as a list
    of dicts and the fetch as a list of names (each known, unless ``known_fetch`` is empty)."""
    if feed is None or fetch is None:
        raise ValueError("You should specify feed and fetch for prediction")
    fetch = [fetch] if isinstance(fetch, str) else list(fetch)
    if not fetch or (known_fetch and any(f not in known_fetch for f in fetch)):
        raise ValueError("Fetch names should not be empty or out of saved fetch list.")
    samples = [feed] if isinstance(feed, dict) else list(feed)
    if not samples:
        raise ValueError("You should specify feed and fetch for prediction")
    return samples, fetch


class Client:
    """Paddle Serving's ``Client``: config, connect, ``predict(feed, fetch)``."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_S):
        self.timeout = timeout
        self.feeds: dict[str, Var] = {}
        self.fetches: dict[str, Var] = {}
        self.connection: Connection | None = None

    def load_client_config(self, path: str | os.PathLike) -> None:
        """Feed/fetch aliases and types from a client (or server) config file or folder."""
        conf = modelconf.load_config(Path(path))
        # By alias, as Paddle Serving's client, and by real name, as the model server takes them.
        self.feeds = modelconf.by_name(modelconf.feed_vars(conf))
        self.fetches = modelconf.by_name(modelconf.fetch_vars(conf))

    def connect(self, endpoints: Sequence[str], max_body_size: int = MAX_BODY_SIZE,
                tls: ClientTls | None = None, api_key: str | None = None) -> None:
        """``tls``: speak TLS to the servers (pdserving.tls.ClientTls: the CA to trust).
        ``api_key``: the servers' API key (default: ``PDSERVING_API_KEY``)."""
        self.connection = Connection(endpoints, timeout=self.timeout,
                                     max_body_size=max_body_size, tls=tls, api_key=api_key)

    def predict(self, feed=None, fetch=None, batch: bool = False,
                log_id: int = 0) -> dict[str, np.ndarray]:
        """Run one request; without ``batch`` each feed dict is one sample (no batch dim)."""
        samples, fetch = check_request(feed, fetch, self.fetches)
        tensors = [self._feed_tensor(name, [s[name] for s in samples], batch)
                   for name in samples[0]]
        if self.connection is None:
            raise RpcError("not connected: call connect([...]) first")
        request = pb.Request(tensor=tensors, fetch_var_names=fetch, log_id=log_id)
        return outputs_to_dict(self.connection.call(request))

    def _feed_tensor(self, name: str, values: list, batch: bool) -> pb.Tensor:
        var = self.feeds.get(name)
        if self.feeds and var is None:
            raise ValueError(f"Wrong feed name: {name}.")
        arrays = [np.asarray(v) for v in values]
        joined = np.concatenate(arrays) if batch else np.stack(arrays)
        return to_tensor(joined, name=var.name if var else "", alias_name=name,
                         elem_type=var.type_code if var else None)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
