"""``PipelineClient``: Paddle Serving's gRPC client of a pipeline service, by its API.

``connect(["127.0.0.1:18091"])`` then ``predict(feed_dict={"image": b64}, fetch=["res"])`` gives
the ``Response`` message (``err_no``, ``err_msg``, ``key``, ``value``). As in Paddle Serving,
``fetch`` is sent nowhere: the service decides what it answers.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import grpc

from pdserving.auth import bearer, client_key
from pdserving.proto import pipeline_service_pb2 as pb
from pdserving.proto import pipeline_service_pb2_grpc as pb_grpc
from pdserving.rpc import MAX_BODY_SIZE, message_limits
from pdserving.rpc.client import open_channel
from pdserving.tls import ClientTls


class PipelineClient:
    def __init__(self, name: str = ""):
        self.name = name  # the service name sent; "" is accepted by every service
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.PipelineServiceStub | None = None
        self._metadata: tuple = ()

    def connect(self, endpoints: Sequence[str], tls: ClientTls | None = None,
                api_key: str | None = None) -> None:
        """Several ``host:port`` endpoints share the calls (round robin); TLS with ``tls``;
        ``api_key`` (default: ``PDSERVING_API_KEY``) sent with every call."""
        self._metadata = tuple(bearer(client_key(api_key)).items())
        options = [*message_limits(MAX_BODY_SIZE), ("grpc.lb_policy_name", "round_robin")]
        self.close()
        self._channel = open_channel(endpoints, options, tls)
        self._stub = pb_grpc.PipelineServiceStub(self._channel)

    def predict(self, feed_dict: Mapping[str, str], fetch: Sequence[str] | None = None,
                log_id: int = 0, timeout: float | None = None, **_ignored) -> pb.Response:
        """One call; ``feed_dict`` maps keys to string values (base64 for an image)."""
        if self._stub is None:
            raise RuntimeError("call connect() before predict()")
        request = pb.Request(key=list(feed_dict), value=[str(v) for v in feed_dict.values()],
                             name=self.name, logid=log_id)
        return self._stub.inference(request, timeout=timeout, metadata=self._metadata)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
