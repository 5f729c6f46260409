"""Fuzzing the pipeline service with hypothesis (issue 26): arbitrary HTTP bodies, JSON shaped
like its request or not, and arbitrary gRPC requests (built from its proto, or raw bytes). No
answer is a failure of ours (HTTP 5xx, gRPC INTERNAL/UNKNOWN, "internal error"), none hangs,
every one is in Paddle Serving's reply shape, and the service still reads a sample right after.
"""

from __future__ import annotations

import base64
import json

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from pdserving.proto import pipeline_service_pb2 as pb
from tests.helpers.fuzz import FUZZ, json_value
from tests.helpers.images import b64, encode, png_claiming, text_line
from tests.pipeline_serving.test_service import INFERENCE, image_request, lines, start

pytestmark = pytest.mark.e2e

REPLY_WITHIN_S = 30
BLANK = b64(encode(np.full((16, 24, 3), 255, np.uint8)))  # no text: fast
TEXT = b64(encode(text_line("FUZZ42")))  # one line the models read: the whole pipeline runs


@pytest.fixture(scope="module")
def pipeline(model_root, tmp_path_factory):
    """``web_service.py`` of this module's own: a fuzz that kills it fails here alone."""
    service = start("web_service.py", model_root, tmp_path_factory)
    service.raw = service.channel.unary_unary(INFERENCE)  # bytes in, bytes out
    yield service
    service.channel.close()
    service.proc.stop()


def assert_reply(doc: dict, sent_text: bool) -> None:
    """Paddle Serving's reply shape; an OK one holds lines PaddleOCR's client can read, the
    text line's when ``sent_text``."""
    event(f"err_no {doc['err_no']}")  # the spread: --hypothesis-show-statistics
    if doc["err_no"] == 0:
        assert doc["key"] == ["result"] and len(doc["value"]) == 1, doc
        read = lines(doc["value"][0])
        for (text, score), box in read:
            assert isinstance(text, str) and 0 <= score <= 1 and len(box) == 4
        if sent_text:
            event("read the text line")
            assert [text for (text, _), _ in read] == ["FUZZ42"]
    else:
        assert doc["err_msg"] and not doc["err_msg"].startswith("internal error"), doc
        assert not doc["key"] and not doc["value"], doc


values = st.one_of(st.text(max_size=20), st.sampled_from([BLANK, TEXT, "data:image/png;base64,"
                                                          + BLANK, BLANK[:-7], BLANK + "!",
                                                          b64(png_claiming(60000, 60000))]),
                   st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()))
images = st.one_of(st.sampled_from([BLANK, TEXT]), values)  # readable ones half the time
keys = st.lists(st.sampled_from(["image", "img", "", "IMAGE"]), max_size=3)
extra_json = st.fixed_dictionaries({}, optional={
    "logid": st.integers(-2**70, 2**70), "clientip": st.text(max_size=8),
    "name": st.sampled_from(["", "ocr", "x"]), "tensors": st.just([])})
shaped_json = st.builds(lambda v, extra: {"key": ["image"], "value": [v], **extra}, images,
                        extra_json)
request_json = st.one_of(
    st.fixed_dictionaries({}, optional={
        "key": st.one_of(keys, json_value),
        "value": st.one_of(st.lists(values, max_size=3), json_value),
        "logid": st.one_of(st.integers(-2**70, 2**70), st.sampled_from(["12", "x", "1e3"]),
                           json_value),
        "clientip": json_value, "name": json_value, "method": json_value,
        "tensors": st.one_of(json_value, st.lists(st.fixed_dictionaries({}, optional={
            "shape": json_value, "elem_type": json_value, "byte_data": json_value,
            "float_data": json_value}), max_size=2)),
    }),
    json_value,
)
http_bodies = st.one_of(shaped_json.map(lambda d: json.dumps(d).encode()),
                        request_json.map(lambda d: json.dumps(d).encode()),
                        st.binary(max_size=200))


@FUZZ
@given(body=http_bodies,
       path=st.one_of(st.just("/ocr/prediction"),
                      st.sampled_from(["/ocr/prediction/", "/ocr/other", "/det/x", "/nope",
                                       "/ocr", "/%00/prediction"])),
       content_type=st.sampled_from([None, "application/json", "text/plain",
                                     "application/octet-stream"]))
def test_any_http_body_is_answered_without_a_failure_of_ours(pipeline, body, path,
                                                             content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    reply = httpx.post(pipeline.base + path, content=body, headers=headers,
                       timeout=REPLY_WITHIN_S)
    assert reply.status_code < 500, reply.text[:300]
    assert pipeline.proc.proc.poll() is None
    if reply.is_redirect:  # Starlette's to the path without its trailing slash
        return
    doc = reply.json()
    if reply.status_code != 200:
        assert doc["err_no"] != 0 and doc["err_msg"], doc
    try:
        sent = json.loads(body)
    except ValueError:
        sent = None
    assert_reply(doc, isinstance(sent, dict) and sent.get("value") == [TEXT])


grpc_requests = st.builds(
    pb.Request, key=keys, value=st.lists(values, max_size=3),
    name=st.sampled_from(["", "ocr", "other"]), method=st.text(max_size=5),
    logid=st.integers(-2**63, 2**63 - 1), clientip=st.text(max_size=8),
    tensors=st.lists(st.builds(pb.Tensor, shape=st.lists(st.integers(-3, 9), max_size=3),
                               elem_type=st.integers(-2, 30), str_data=st.lists(values,
                                                                                max_size=2),
                               byte_data=st.binary(max_size=20)), max_size=2))
image_requests = st.builds(pb.Request, key=st.just(["image"]), value=st.lists(images, min_size=1,
                                                                              max_size=1),
                           name=st.sampled_from(["", "ocr"]), logid=st.integers(0, 2**63 - 1))
grpc_bodies = st.one_of(st.one_of(image_requests, grpc_requests).map(
                            pb.Request.SerializeToString),
                        st.binary(max_size=200))


def parses(message: bytes) -> bool:
    try:
        pb.Request.FromString(message)
    except Exception:
        return False
    return True


@FUZZ
@given(message=grpc_bodies)
def test_any_grpc_request_is_answered_without_a_failure_of_ours(pipeline, message):
    try:
        reply = pb.Response.FromString(pipeline.raw(message, timeout=REPLY_WITHIN_S))
    except grpc.RpcError as e:
        event(f"gRPC {e.code().name}")
        # grpcio answers a message it cannot decode with INTERNAL "Exception deserializing
        # request!" before any code of ours runs: the one INTERNAL allowed
        assert e.code() == grpc.StatusCode.INTERNAL and not parses(message), \
            (e.code(), e.details())
        assert "deserializing" in e.details()
        return
    finally:
        assert pipeline.proc.proc.poll() is None
    assert_reply({"err_no": reply.err_no, "err_msg": reply.err_msg, "key": list(reply.key),
                  "value": list(reply.value)}, list(pb.Request.FromString(message).value) == [TEXT])


def test_still_reads_a_sample_after_the_fuzz(pipeline, samples):
    image, expected = samples["doc_english.png"]
    http = pipeline.post(image_request(image)).json()
    assert [text for (text, _), _ in lines(http["value"][0])] == expected
    rpc = pipeline.grpc(**image_request(image))
    assert [text for (text, _), _ in lines(rpc.value[0])] == expected
