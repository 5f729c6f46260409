"""Prometheus metrics of the services, created once per process in the default registry.

``GET /metrics`` serves them (``pdserving.web.app``). The pipeline wraps its models with
``timed`` so inference time is measured per model, wherever the model runs (in-process or RPC).
"""

from __future__ import annotations

from typing import Callable, TypeVar

from prometheus_client import Counter, Gauge, Histogram, Info

T = TypeVar("T")

# Latency buckets from a few milliseconds (health checks) to the default request timeout.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter("pdserving_http_requests", "HTTP requests answered",
                   ["service", "route", "status"])
LATENCY = Histogram("pdserving_http_request_duration_seconds",
                    "Time from request to response", ["service", "route"], buckets=_BUCKETS)
IN_FLIGHT = Gauge("pdserving_requests_in_flight",
                  "Requests being processed (including timed-out work still finishing)",
                  ["service"])
QUEUED = Gauge("pdserving_requests_queued", "Admitted requests waiting for a processing slot",
               ["service"])
RPC_REQUESTS = Counter("pdserving_rpc_requests", "gRPC pipeline calls answered, by err_no",
                       ["service", "err_no"])
INFERENCE = Histogram("pdserving_model_inference_seconds", "Time of one model call (one batch)",
                      ["model"], buckets=_BUCKETS)

ENGINE = Info("pdserving_model_engine", "The engine that runs each model", ["model"])
FAMILY = Info("pdserving_model_family",
              "The model family and PaddleX model name each model's folder records", ["model"])


def note_engines(engines: dict[str, str]) -> None:
    """Publish which engine runs each model (``openvino``, ``paddle``)."""
    for model, engine in engines.items():
        ENGINE.labels(model=model).info({"engine": engine})


def note_families(folders) -> None:
    """Publish the family and model name each model folder records (``ModelFolder``)."""
    for model, folder in folders.items():
        info = {"family": folder.settings.family or "unrecorded",
                "model_name": folder.settings.model_name or folder.name}
        FAMILY.labels(model=model).info(info)


def timed(model: Callable[..., T], name: str) -> Callable[..., T]:
    """``model`` with each call's duration recorded as ``pdserving_model_inference_seconds``
    (on Ray: a det or rec replica's part of the pipeline, as the ingress waits for it)."""
    histogram = INFERENCE.labels(model=name)

    def call(*args) -> T:
        with histogram.time():
            return model(*args)

    return call
