"""API keys on the model server's one port (docs/design.md §2.11): HTTP (JSON and protobuf)
and gRPC refuse a call without one of the keys, in their own forms (a 401 carrying the
Response's ``err_no``/``err_msg``; UNAUTHENTICATED), and answer either key (rotation), sent by
our clients or as Paddle Serving's HttpClient would send it."""

from __future__ import annotations

import json

import grpc
import httpx
import numpy as np
import pytest

from pdserving import auth
from pdserving.errors import Unavailable
from pdserving.net import free_port
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.rpc import server as rpc_server
from pdserving.rpc.client import Client, RemoteModel
from pdserving.rpc.codec import to_tensor
from tests.rpc.test_protocols import FETCH, METHOD, PATH

OLD, NEW, WRONG = "old-key-7f3a9c", "new-key-2b8e1d", "wrong-key-0000"
X = np.zeros((1, 3, 64, 64), np.float32)
REQUEST = pb.Request(tensor=[to_tensor(X, alias_name="x")], log_id=3)


@pytest.fixture(scope="module")
def endpoint(det_dir):
    port = free_port()
    server = rpc_server.serve(det_dir, port, host="127.0.0.1", threads=2,
                              auth=auth.Auth((OLD, NEW)))
    yield f"127.0.0.1:{port}"
    server.stop(0)


def post(endpoint: str, proto: bool, headers: dict) -> tuple[httpx.Response, pb.Response]:
    """REQUEST as HttpClient posts it (protobuf or JSON); the reply and its Response."""
    if proto:
        content, kind = REQUEST.SerializeToString(), "application/proto"
    else:
        content = json.dumps({"tensor": [{"float_data": X.ravel().tolist(), "shape": [1, 3, 64, 64],
                                          "elem_type": 1, "alias_name": "x"}], "log_id": 3})
        kind = "application/json"
    r = httpx.post(f"http://{endpoint}{PATH}", content=content, timeout=30,
                   headers={"Content-Type": kind, **headers})
    assert r.headers["content-type"] == kind
    if proto:
        return r, pb.Response.FromString(r.content)
    doc = r.json()
    return r, pb.Response(err_no=doc.get("err_no", 0), err_msg=doc.get("err_msg", ""),
                          log_id=doc.get("log_id", 0))


@pytest.mark.parametrize("proto", [False, True], ids=["json", "proto"])
@pytest.mark.parametrize("headers, message", [
    ({}, "missing API key"), ({"Authorization": f"Bearer {WRONG}"}, "wrong API key"),
    ({"X-API-Key": WRONG}, "wrong API key")], ids=["none", "wrong-bearer", "wrong-x-api-key"])
def test_http_without_a_right_key_is_401_in_the_requests_encoding(endpoint, proto, headers,
                                                                   message):
    r, response = post(endpoint, proto, headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert response.err_no == 401 and response.err_msg.startswith(message)
    assert WRONG not in r.text


@pytest.mark.parametrize("proto", [False, True], ids=["json", "proto"])
@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {OLD}"}, {"X-API-Key": NEW}],
                         ids=["bearer-old", "x-api-key-new"])
def test_http_with_either_key_is_answered(endpoint, proto, headers):
    r, response = post(endpoint, proto, headers)
    assert r.status_code == 200, response.err_msg
    assert response.err_no == 0 and response.log_id == 3


@pytest.mark.parametrize("metadata, message", [
    ((), "missing API key"), ((("authorization", f"Bearer {WRONG}"),), "wrong API key")],
    ids=["none", "wrong"])
def test_grpc_without_a_right_key_is_unauthenticated(endpoint, metadata, message):
    with grpc.insecure_channel(endpoint) as channel:
        call = channel.unary_unary(METHOD, pb.Request.SerializeToString, pb.Response.FromString)
        with pytest.raises(grpc.RpcError) as refused:
            call(REQUEST, timeout=30, metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.details().startswith(message)


def test_our_clients_send_their_key(endpoint, det_dir, monkeypatch):
    for key in (OLD, NEW):
        model = RemoteModel([endpoint], api_key=key)
        try:
            assert model(X).shape[-2:] == (64, 64) and model.ready()
        finally:
            model.close()
    monkeypatch.delenv(auth.CLIENT_ENV, raising=False)
    model = RemoteModel([endpoint], name="det model server")
    with pytest.raises(Unavailable, match="det model server .* refused our API key "
                                          r"\(.*: UNAUTHENTICATED: missing API key"):
        model(X)
    assert not model.ready()
    model.close()
    # Paddle Serving's Client: a keyword of connect, else PDSERVING_API_KEY
    client = Client()
    client.load_client_config(det_dir)
    monkeypatch.setenv(auth.CLIENT_ENV, NEW)
    for kwargs in ({"api_key": OLD}, {}):
        client.connect([endpoint], **kwargs)
        assert client.predict(feed={"x": X[0]}, fetch=[FETCH])[FETCH].shape[-2:] == (64, 64)
        client.close()
