"""Every way Paddle Serving 0.9's clients talk to a model server, on its one port, with a client
written from the published protocol (not our client classes): HTTP+JSON, HTTP+protobuf, either
gzip-compressed, and gRPC; then bad requests in each mode, each followed by a good one."""

import base64
import gzip
import json

import grpc
import httpx
import numpy as np
import pytest

from pdserving.engine import EngineOptions
from pdserving.engine.load import load_models
from pdserving.engine.model_folder import ModelFolder
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.rpc.client import RemoteModel
from tests.helpers.images import det_batch, text_image
from tests.rpc.conftest import MAX_BODY_SIZE

PATH = "/GeneralModelService/inference"
METHOD = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"
FETCH = "sigmoid_0.tmp_0"
X = det_batch(text_image(width=320, height=96))
MODES = ["json", "json+gzip", "proto", "proto+gzip", "grpc"]


def tensor_fields(x: np.ndarray) -> dict:
    """One feed as ``HttpClient.process_tensor`` makes it: typed values, real and alias name."""
    return {"float_data": x.reshape(-1).tolist(), "shape": list(x.shape), "elem_type": 1,
            "name": "x", "alias_name": "image"}


def request_fields(x: np.ndarray = X) -> dict:
    return {"tensor": [tensor_fields(x)], "fetch_var_names": [FETCH], "log_id": 7}


class Caller:
    """Posts a Request (given as its fields) in one mode and returns (HTTP status, Response)."""

    def __init__(self, endpoint: str):
        self.http = httpx.Client(base_url=f"http://{endpoint}", timeout=30)
        self.channel = grpc.insecure_channel(endpoint)
        self.grpc = self.channel.unary_unary(
            METHOD, request_serializer=pb.Request.SerializeToString,
            response_deserializer=pb.Response.FromString)

    def __call__(self, mode: str, fields: dict) -> tuple[int, pb.Response]:
        if mode == "grpc":
            return 200, self.grpc(pb.Request(**fields), timeout=30)
        if mode.startswith("json"):
            body, kind = json.dumps(fields).encode(), "application/json"
        else:
            body, kind = pb.Request(**fields).SerializeToString(), "application/proto"
        return self.post(body, kind, gzipped=mode.endswith("gzip"))

    def post(self, body: bytes, kind: str, gzipped: bool = False, path: str = PATH,
             method: str = "POST") -> tuple[int, pb.Response]:
        """The exchange as HttpClient makes it; the reply decoded by hand from its raw bytes."""
        headers = {"Content-Type": kind, "Accept-encoding": "gzip" if gzipped else "identity"}
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        with self.http.stream(method, path, content=body, headers=headers) as reply:
            raw = b"".join(reply.iter_raw())
        if gzipped:
            assert reply.headers["Content-Encoding"] == "gzip"
            raw = gzip.decompress(raw)
        else:
            assert "Content-Encoding" not in reply.headers
        assert reply.headers["Content-Type"] == kind  # HttpClient compares with ==
        if kind == "application/proto":
            return reply.status_code, pb.Response.FromString(raw)
        as_json = json.loads(raw)
        # brpc's JSON: the .proto's field names, 64-bit integers as numbers (log_id 7, not "7")
        assert all(isinstance(as_json[k], int) for k in ("log_id", "err_no") if k in as_json)
        return reply.status_code, json_to_response(as_json)

    def close(self) -> None:
        self.http.close()
        self.channel.close()


def json_to_response(fields: dict) -> pb.Response:
    """A JSON reply read as its fields say, without protobuf's JSON parser (bytes in base64)."""
    def tensor(t: dict) -> pb.Tensor:
        return pb.Tensor(**{**t, "tensor_content": base64.b64decode(t.get("tensor_content", ""))})
    outputs = [pb.ModelOutput(tensor=[tensor(t) for t in o.get("tensor", [])],
                              engine_name=o.get("engine_name", ""))
               for o in fields.get("outputs", [])]
    return pb.Response(outputs=outputs, log_id=fields.get("log_id", 0),
                       err_no=fields.get("err_no", 0), err_msg=fields.get("err_msg", ""))


@pytest.fixture(scope="module")
def call(det_endpoint):
    caller = Caller(det_endpoint)
    yield caller
    caller.close()


@pytest.fixture(scope="module")
def expected(det_dir, det_endpoint) -> np.ndarray:
    """The det output for ``X`` from the engine in this process; our own client (raw
    tensor_content both ways) gets the same from the server."""
    loaded = load_models({"det": ModelFolder.read(det_dir)}, EngineOptions())
    out = loaded.models["det"](X)
    loaded.close()
    assert out.shape == (1, 1, 96, 320) and out.max() > 0.5  # the text line is found
    model = RemoteModel([det_endpoint], feed_name="image")
    np.testing.assert_allclose(model(X), out, atol=1e-5)
    model.close()
    return out


def output(reply: pb.Response) -> pb.Tensor:
    assert reply.err_no == 0, reply.err_msg
    assert reply.log_id == 7
    (t,) = reply.outputs[0].tensor
    assert (t.name, t.alias_name, t.elem_type, list(t.shape)) == (FETCH, FETCH, 1, [1, 1, 96, 320])
    return t


@pytest.mark.parametrize("mode", MODES)
def test_typed_request_gets_the_output_in_float_data(call, expected, mode):
    status, reply = call(mode, request_fields())
    assert status == 200
    t = output(reply)
    assert not t.tensor_content
    np.testing.assert_allclose(np.array(t.float_data, np.float32).reshape(t.shape), expected,
                               atol=1e-5)


@pytest.mark.parametrize("mode", ["proto", "proto+gzip", "grpc"])
def test_raw_request_keeps_the_raw_fast_path(call, expected, mode):
    fields = request_fields()
    raw = {k: v for k, v in fields["tensor"][0].items() if k != "float_data"}
    fields["tensor"] = [{**raw, "tensor_content": X.tobytes()}]
    status, reply = call(mode, fields)
    t = output(reply)
    assert status == 200 and not t.float_data
    np.testing.assert_allclose(np.frombuffer(t.tensor_content, "<f4").reshape(t.shape), expected,
                               atol=1e-5)


def test_json_with_tensor_content_in_base64(call, expected):
    """The protobuf JSON mapping carries bytes as base64, both ways."""
    fields = request_fields()
    raw = {k: v for k, v in fields["tensor"][0].items() if k != "float_data"}
    fields["tensor"] = [{**raw, "tensor_content": base64.b64encode(X.tobytes()).decode()}]
    status, reply = call.post(json.dumps(fields).encode(), "application/json")
    assert status == 200
    t = output(reply)
    decoded = np.frombuffer(t.tensor_content, "<f4")
    np.testing.assert_allclose(decoded.reshape(t.shape), expected, atol=1e-5)


def big_request() -> dict:
    return request_fields(np.zeros((1, 3, 640, 640), np.float32))


BAD = {  # name: (modes, Request fields, HTTP status = err_no, words of err_msg)
    "unknown feed": (MODES, {**request_fields(), "tensor": [
        {**tensor_fields(X), "name": "img", "alias_name": "img"}]}, 400, "unknown feed name 'img'"),
    "wrong shape": (MODES, request_fields(X[0]), 400, "expects [batch, 3, any, any]"),
    "values not matching the shape": (
        MODES, {**request_fields(), "tensor": [{**tensor_fields(X), "shape": [1, 3, 96, 321]}]},
        400, "values, shape [1, 3, 96, 321]"),
    "body too large": (MODES[:-1], big_request(), 413, "over the limit"),
}


@pytest.mark.parametrize("mode,name", [(m, n) for n, (modes, *_) in BAD.items() for m in modes])
def test_bad_request_then_a_good_one(call, mode, name):
    _, fields, status, words = BAD[name]
    if mode.endswith("gzip") and status == 413:  # zeros compress well: the limit is on the
        words = "once decompressed"  # decompressed body too
    got, reply = call(mode, fields)
    assert reply.err_no == status and words in reply.err_msg, reply.err_msg
    assert got == (200 if mode == "grpc" else status)  # gRPC: an OK call with err_no
    assert not reply.outputs
    assert call(mode, request_fields())[0] == 200


RAW_BAD = {  # name: (body, Content-Type, words of err_msg); all 400
    "malformed JSON": (b'{"tensor": [', "application/json", "not a JSON Request"),
    "JSON of another message": (b'{"tensors": []}', "application/json", '"tensors"'),
    "a string for a float": (json.dumps({"tensor": [{**tensor_fields(X[:, :, :1, :1]),
                                                     "float_data": ["x"]}]}).encode(),
                             "application/json", "not a JSON Request"),
    "not protobuf": (b"\xff\xff\xff\xff not a protobuf", "application/proto",
                     "not a protobuf Request"),
    "empty protobuf": (b"", "application/proto", "empty request"),
}


@pytest.mark.parametrize("name", RAW_BAD)
def test_undecodable_body_then_a_good_one(call, name):
    body, kind, words = RAW_BAD[name]
    status, reply = call.post(body, kind)
    assert (status, reply.err_no) == (400, 400) and words in reply.err_msg, reply.err_msg
    assert call("json", request_fields())[0] == 200


@pytest.mark.parametrize("headers,words", [
    ({"Content-Type": "text/plain"}, "Content-Type 'text/plain'"),
    ({"Content-Type": "application/json", "Content-Encoding": "br"}, "Content-Encoding 'br'"),
])
def test_unknown_encoding_is_415_in_json(call, headers, words):
    reply = call.http.post(PATH, content=b"{}", headers=headers)
    assert reply.headers["Content-Type"] == "application/json"
    parsed = json_to_response(reply.json())
    assert (reply.status_code, parsed.err_no) == (415, 415) and words in parsed.err_msg
    assert call("json", request_fields())[0] == 200


@pytest.mark.parametrize("kind", ["application/json", "application/proto"])
def test_bad_gzip_and_gzip_bomb(call, kind):
    headers = {"Content-Type": kind, "Content-Encoding": "gzip", "Accept-encoding": "identity"}
    for body, status, words in [(b"\x1f\x8b not gzip", 400, "not gzip"),
                                (gzip.compress(b"{}")[:-6], 400, "truncated"),
                                (gzip.compress(b" " * (MAX_BODY_SIZE + 1)), 413,
                                 "once decompressed")]:
        reply = call.http.post(PATH, content=body, headers=headers)
        parsed = (pb.Response.FromString(reply.content) if kind == "application/proto"
                  else json_to_response(reply.json()))
        assert (reply.status_code, parsed.err_no) == (status, status)
        assert words in parsed.err_msg, parsed.err_msg
    assert call("proto+gzip", request_fields())[0] == 200


@pytest.mark.parametrize("method,path,status,words", [
    ("POST", "/GeneralModelService/debug", 404, "no such path"),
    ("GET", PATH, 405, "method GET not allowed"),
    ("PUT", PATH, 405, "method PUT not allowed"),
])
@pytest.mark.parametrize("kind", ["application/json", "application/proto"])
def test_other_paths_and_methods_are_refused_in_the_request_encoding(call, method, path,
                                                                      status, words, kind):
    body = pb.Request(**request_fields()).SerializeToString() if "proto" in kind else b"{}"
    got, reply = call.post(body, kind, path=path, method=method)
    assert (got, reply.err_no) == (status, status) and words in reply.err_msg
    assert "POST /GeneralModelService/inference" in reply.err_msg
    assert call("grpc", request_fields())[0] == 200


def test_405_says_allow_post(call):
    assert call.http.get(PATH).headers["Allow"] == "POST"
