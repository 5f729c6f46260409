"""The HTTP side's encodings on their own: headers to a wire format, gzip with its limit, and
JSON replies as brpc wrote them (protobuf's parser must read them back to the same message)."""

import gzip
import json
import math

import pytest
from google.protobuf import json_format
from starlette.datastructures import Headers

from pdserving.errors import BadRequest, PayloadTooLarge
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.rpc.http import Wire, gunzip, to_json


@pytest.mark.parametrize("headers,wire", [
    ({}, Wire()),  # no Content-Type: JSON, as brpc took it
    ({"content-type": "application/json; charset=utf-8"}, Wire()),
    ({"Content-Type": "application/proto", "Content-Encoding": "gzip"}, Wire(True, True)),
    ({"Content-Type": "Application/Proto", "Accept-encoding": "gzip"}, Wire(True, False, True)),
    ({"accept-encoding": "br, gzip;q=0.5"}, Wire(False, False, True)),
    ({"accept-encoding": "deflate"}, Wire()),
])
def test_wire_from_headers(headers, wire):
    assert Wire.of(Headers(headers)) == (wire, None)


@pytest.mark.parametrize("headers", [{"content-type": "text/plain"},
                                     {"content-encoding": "deflate"}])
def test_unknown_encodings_are_415(headers):
    _, error = Wire.of(Headers(headers))
    assert error.status == error.err_no == 415


def test_gunzip_reads_every_member_up_to_the_limit():
    body = gzip.compress(b"a" * 10) + gzip.compress(b"b" * 6)
    assert gunzip(body, 16) == b"a" * 10 + b"b" * 6
    with pytest.raises(PayloadTooLarge, match="over 15 bytes once decompressed"):
        gunzip(body, 15)
    with pytest.raises(BadRequest, match="truncated"):
        gunzip(body[:-3], 16)
    with pytest.raises(BadRequest, match="not gzip"):
        gunzip(b"{}", 16)


def response() -> pb.Response:
    t = pb.Tensor(name="x", alias_name="y", elem_type=0, shape=[1, 3], lod=[0, 3],
                  int64_data=[-(2**63), 0, 2**63 - 1], float_data=[0.5, math.nan, -math.inf],
                  float64_data=[1e300, math.inf], bool_data=[True, False], data=["é", ""],
                  tensor_content=b"\x00\xff")
    return pb.Response(outputs=[pb.ModelOutput(tensor=[t], engine_name="general_infer_0")],
                       profile_time=[2**40], log_id=2**64 - 1, err_no=0)


def test_json_reply_has_proto_names_and_integer_numbers():
    as_json = json.loads(json.dumps(to_json(response())))
    t = as_json["outputs"][0]["tensor"][0]
    assert t["int64_data"] == [-(2**63), 0, 2**63 - 1]  # numbers, not "9223372036854775807"
    assert as_json["log_id"] == 2**64 - 1 and as_json["profile_time"] == [2**40]
    assert t["alias_name"] == "y" and "elem_type" not in t  # 0: a default, left out
    assert t["float_data"] == [0.5, "NaN", "-Infinity"] and t["tensor_content"] == "AP8="
    assert "err_no" not in as_json


def test_protobuf_reads_our_json_back_to_the_same_message():
    assert json_format.ParseDict(to_json(response()), pb.Response()) == response()


@pytest.mark.parametrize("tensor", [
    {"float_data": [0.5, -1.25, 3], "shape": [1, 3], "elem_type": 1},  # the fast path
    {"float_data": ["0.5", "NaN", "-Infinity"], "shape": [3], "elem_type": 1},  # strings
    {"int64_data": ["12", 7], "shape": [2], "elem_type": 0},  # int64 as the mapping writes it
    {"int_data": [1, 2], "float64_data": [1e300], "data": ["a"], "shape": [2]},
])
def test_json_requests_read_as_protobufs_own_parser_reads_them(tensor):
    body = json.dumps({"tensor": [tensor, {"name": "y"}], "fetch_var_names": ["out"],
                       "log_id": 3}).encode()
    got = Wire().decode(body, 1 << 20)
    want = json_format.Parse(body, pb.Request())
    assert str(got) == str(want)  # str: NaN != NaN as a message


@pytest.mark.parametrize("body", [b'{"tensor": [{"float_data": ["x"]}]}',
                                  b'{"tensor": [{"int64_data": [1.5]}]}',
                                  b'{"tensor": [{"float_data": 3}]}',
                                  b'{"tensor": "no"}', b'[1, 2]', b'{"tensor": [[' * 10000])
def test_json_requests_protobuf_refuses_are_400(body):
    with pytest.raises(BadRequest, match="body is not a JSON Request"):
        Wire().decode(body, 1 << 20)
