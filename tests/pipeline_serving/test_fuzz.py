"""Fuzzing the pipeline service with hypothesis (issue 26): arbitrary HTTP bodies, JSON shaped
like its request or not, and arbitrary gRPC requests. No answer is a failure of ours (HTTP 5xx,
"internal error"), none hangs, and the service still reads a sample right afterwards."""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdserving.proto import pipeline_service_pb2 as pb
from tests.helpers.images import encode
from tests.pipeline_serving.test_service import image_request, lines, start

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
BLANK = base64.b64encode(encode(np.full((16, 24, 3), 255, np.uint8))).decode()  # no text: fast


@pytest.fixture(scope="module")
def pipeline(model_root, tmp_path_factory, samples):
    service = start("web_service.py", model_root, tmp_path_factory)
    yield service
    try:  # after all the fuzz: still reading a real sample right
        image, expected = samples["doc_english.png"]
        reply = service.post(image_request(image)).json()
        assert [text for (text, _), _ in lines(reply["value"][0])] == expected
    finally:
        service.channel.close()
        service.proc.stop()


values = st.one_of(st.text(max_size=20), st.just(BLANK),
                   st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()))
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                          | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                          max_leaves=8)
request_json = st.one_of(
    st.fixed_dictionaries({}, optional={
        "key": st.one_of(st.lists(st.sampled_from(["image", "img", ""]), max_size=3),
                         json_value),
        "value": st.one_of(st.lists(values, max_size=3), json_value),
        "logid": st.one_of(st.integers(-2**70, 2**70), json_value),
        "clientip": json_value, "name": json_value, "method": json_value,
        "tensors": json_value,
    }),
    json_value,
)
http_bodies = st.one_of(request_json.map(lambda d: json.dumps(d).encode()),
                        st.binary(max_size=200))


@FUZZ
@given(body=http_bodies, path=st.sampled_from(["/ocr/prediction", "/ocr/prediction/",
                                               "/nope", "/ocr"]))
def test_any_http_body_is_answered_without_a_failure_of_ours(pipeline, body, path):
    reply = pipeline.post(body, path)
    assert reply.status_code < 500, reply.text[:300]
    if reply.is_redirect:  # Starlette's to the path without its trailing slash
        return
    doc = reply.json()
    assert not str(doc.get("err_msg", "")).startswith("internal error"), doc


grpc_requests = st.builds(
    pb.Request, key=st.lists(st.sampled_from(["image", "img", ""]), max_size=3),
    value=st.lists(values, max_size=3), name=st.sampled_from(["", "ocr", "other"]),
    method=st.text(max_size=5), logid=st.integers(-2**63, 2**63 - 1),
    clientip=st.text(max_size=8),
    tensors=st.lists(st.builds(pb.Tensor, shape=st.lists(st.integers(-3, 9), max_size=3),
                               elem_type=st.integers(-2, 30),
                               byte_data=st.binary(max_size=20)), max_size=2))


@FUZZ
@given(request=grpc_requests)
def test_any_grpc_request_is_answered_without_a_failure_of_ours(pipeline, request):
    try:
        reply = pipeline.call(request, timeout=60)
    except grpc.RpcError as e:
        assert e.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                                grpc.StatusCode.DEADLINE_EXCEEDED), e.details()
        return
    assert not reply.err_msg.startswith("internal error"), reply.err_msg
