"""The pipeline's two fronts when the handler behind them fails or is busy: a clear reply in the
pipeline's shape, and the server goes on serving. (The handler here fails on purpose; the real
models are in test_service.py.)"""

import base64
import threading

import grpc
import httpx
import pytest

from pdserving.errors import Unavailable
from pdserving.net import PortInUse, bind, free_port, wait_until
from pdserving.pipeline_serving.service import Pipeline, http_front, serve_grpc
from pdserving.proto import pipeline_service_pb2 as pb
from pdserving.web.app import WebSettings, create_app
from tests.helpers.images import encode, text_image
from tests.helpers.servers import serve

INFERENCE = "/baidu.paddle_serving.pipeline_serving.PipelineService/inference"
IMAGE = base64.b64encode(encode(text_image())).decode()
GOOD = {"key": ["image"], "value": [IMAGE]}


class FailingHandler:
    """A det-only handler that raises ``error``, or answers one box. Every call sets
    ``started``; with ``hold``, a call then waits until ``hold`` is set before it answers."""

    name = "det"
    outputs = ("dt_boxes",)
    result_type = dict

    def __init__(self, error: Exception | None = None, hold: threading.Event | None = None):
        self.error = error
        self.hold = hold
        self.started = threading.Event()

    def __call__(self, images, fetch):
        self.started.set()
        if self.error:
            raise self.error
        if self.hold is not None and not self.hold.wait(30):
            raise TimeoutError("the test never let the call finish")
        return {"dt_boxes": [[[0, 0], [9, 0], [9, 9], [0, 9]]]}

    def ready(self):
        return None


def grpc_call(port: int, **fields) -> pb.Response:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(INFERENCE, pb.Request.SerializeToString,
                                   pb.Response.FromString)
        return call(pb.Request(**fields), timeout=30)


@pytest.fixture
def grpc_front():
    """``start(handler, settings)`` -> the port of a started gRPC front; stopped after."""
    servers = []

    def start(handler, settings=WebSettings()):
        port = free_port()
        servers.append(serve_grpc(Pipeline(handler, "det", 10**6), "127.0.0.1", port, settings))
        return port

    yield start
    for server in servers:
        server.stop(None)


def test_grpc_unavailable_and_bugs_are_replies_with_err_no(grpc_front, caplog):
    port = grpc_front(FailingHandler(Unavailable("det is down")))
    reply = grpc_call(port, **GOOD)
    assert (reply.err_no, reply.err_msg, list(reply.value)) == (503, "det is down", [])

    port = grpc_front(FailingHandler(RuntimeError("secret internals")))
    reply = grpc_call(port, **GOOD)
    assert reply.err_no == 10000 and reply.err_msg == "internal error: RuntimeError"
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "secret internals" in str(record.exc_info[1])  # logged, never sent
    assert grpc_call(port, key=["image"], value=["%%"]).err_no == 10000  # still serving


def test_grpc_beyond_the_queue_is_resource_exhausted_then_served(grpc_front):
    release = threading.Event()
    handler = FailingHandler(hold=release)
    port = grpc_front(handler, WebSettings(max_in_flight=1, max_queue=0))
    replies = []
    first = threading.Thread(target=lambda: replies.append(grpc_call(port, **GOOD)))
    first.start()
    try:
        # The first call is in the handler: it holds the one slot until released.
        assert handler.started.wait(30), "the first call never reached the handler"
        with pytest.raises(grpc.RpcError) as e:
            grpc_call(port, **GOOD)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        release.set()
        first.join(30)
    assert [r.err_no for r in replies] == [0]  # the held call was served too

    def served() -> bool:  # grpcio frees the held call's place a moment after its reply left
        try:
            return grpc_call(port, **GOOD).err_no == 0
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            return False

    wait_until(served, 10, "a call after the held one is served")


def test_grpc_port_in_use():
    with bind("127.0.0.1", 0) as taken:
        taken.listen()
        with pytest.raises(PortInUse):
            serve_grpc(Pipeline(FailingHandler(), "det", 10**6), "127.0.0.1",
                       taken.getsockname()[1], WebSettings())


def http_app(handler, settings=WebSettings()):
    return create_app(handler, settings, front=http_front(Pipeline(handler, "det", 10**6)))


def assert_refused(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status
    reply = r.json()
    assert reply["err_no"] == status and words in reply["err_msg"]
    assert (reply["key"], reply["value"], reply["tensors"]) == ([], [], [])


def test_http_unavailable_is_a_503_with_retry_after_in_the_pipeline_shape():
    with serve(http_app(FailingHandler(Unavailable("det is down", 2)))) as base:
        r = httpx.post(base + "/ocr/prediction", json=GOOD)
    assert_refused(r, 503, "det is down")
    assert r.headers["retry-after"] == "2"


def test_http_bug_is_a_generic_500_and_the_body_limit_a_413():
    with serve(http_app(FailingHandler(RuntimeError("secret")))) as base:
        assert_refused(httpx.post(base + "/ocr/prediction", json=GOOD), 500,
                       "internal server error")
    with serve(http_app(FailingHandler(), WebSettings(max_body_bytes=1000))) as base:
        assert_refused(httpx.post(base + "/ocr/prediction", json=GOOD), 413,
                       "over the limit of 1000")
        assert_refused(httpx.get(base + "/ocr/prediction"), 405, "Method Not Allowed")
        small = {"key": ["image"], "value": ["%%"]}
        assert httpx.post(base + "/ocr/prediction", json=small).json()["err_no"] == 10000
