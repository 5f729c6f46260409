"""TLS on the model server's port (gRPC and HTTP still sharing it, routed by ALPN), with a CA
and certificates made here: our clients with the CA are answered, clients without it or
speaking plain are refused, and mutual TLS refuses a client without a certificate."""

from __future__ import annotations

import ssl
import subprocess
import sys

import httpx
import numpy as np
import pytest

from pdserving.errors import Unavailable
from pdserving.launcher import model_server
from pdserving.net import free_port
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.rpc.client import RemoteModel
from pdserving.rpc.codec import to_tensor
from pdserving.tls import ClientTls, alpn_offered
from tests.helpers.tls import make_pki

IMAGE = np.zeros((1, 3, 64, 64), np.float32)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_flags(pki, mutual: bool = False) -> list[str]:
    return ["--tls_cert", str(pki.server_cert), "--tls_key", str(pki.server_key),
            *(["--tls_client_ca", str(pki.ca)] if mutual else [])]


@pytest.fixture(scope="module", params=[False, True], ids=["tls", "mutual"])
def det(request, model_root, pki):
    """The det model server with TLS (and mutual TLS); ``det.mutual`` says which."""
    with model_server(model_root / "ocr_det_model", free_port(),
                      extra_args=tls_flags(pki, request.param)) as server:
        server.mutual = request.param
        yield server


def grpc_det(endpoint: str, tls: ClientTls | None) -> np.ndarray:
    model = RemoteModel([endpoint], timeout=10, name="det model server", tls=tls)
    try:
        return model(IMAGE)
    finally:
        model.close()


def http_det(endpoint: str, tls: ClientTls | None) -> httpx.Response:
    request = pb.Request(tensor=[to_tensor(IMAGE, alias_name="x")])
    return httpx.post(f"{'https' if tls else 'http'}://{endpoint}/GeneralModelService/inference",
                      content=request.SerializeToString(), timeout=10,
                      headers={"Content-Type": "application/proto"},
                      verify=tls.ssl_context() if tls else False)


def ours(pki) -> ClientTls:
    """Our CA, and our client certificate (which a server without mutual TLS does not ask)."""
    return ClientTls(str(pki.ca), str(pki.client_cert), str(pki.client_key))


def test_grpc_and_http_share_the_port_under_tls(det, pki):
    assert grpc_det(det.endpoint, ours(pki)).shape[-2:] == (64, 64)
    reply = http_det(det.endpoint, ours(pki))
    assert reply.status_code == 200
    assert pb.Response.FromString(reply.content).err_no == 0


def test_a_client_not_trusting_the_ca_is_refused(det, pki):
    stranger = ClientTls(str(pki.other_ca), str(pki.client_cert), str(pki.client_key))
    with pytest.raises(Unavailable):
        grpc_det(det.endpoint, stranger)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        http_det(det.endpoint, stranger)


def test_a_plain_client_is_refused(det):
    with pytest.raises(Unavailable):
        grpc_det(det.endpoint, None)
    with pytest.raises(httpx.TransportError):
        http_det(det.endpoint, None)


def test_mutual_tls_refuses_a_client_without_a_certificate(det, pki):
    anonymous = ClientTls(str(pki.ca))
    if not det.mutual:
        assert grpc_det(det.endpoint, anonymous).shape[-2:] == (64, 64)
        assert http_det(det.endpoint, anonymous).status_code == 200
        return
    with pytest.raises(Unavailable):
        grpc_det(det.endpoint, anonymous)
    with pytest.raises(httpx.TransportError):
        http_det(det.endpoint, anonymous)


def test_alpn_is_read_from_a_real_client_hello():
    """The protocols that route a TLS connection, from the hello Python's ssl writes."""
    def hello(protocols: list[str]) -> bytes:
        context = ssl.create_default_context()
        if protocols:
            context.set_alpn_protocols(protocols)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        conn = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with pytest.raises(ssl.SSLWantReadError):
            conn.do_handshake()
        return outgoing.read()

    assert alpn_offered(hello(["h2"])) == [b"h2"]
    assert alpn_offered(hello(["h2", "http/1.1"])) == [b"h2", b"http/1.1"]
    assert alpn_offered(hello([])) == []
    first = hello(["h2"])
    assert alpn_offered(first[:20]) is None  # the record is not all there yet
    assert alpn_offered(b"\x16\x03\x01\x00\x05junk!") == []


@pytest.mark.parametrize("flags,message", [
    (["--tls_cert", "x.pem"], "--tls_cert and --tls_key go together"),
    (["--tls_client_ca", "ca.pem"], "--tls_client_ca needs --tls_cert and --tls_key"),
    (["--tls_cert", "nowhere.pem", "--tls_key", "nowhere.key"], "nowhere.pem"),
])
def test_tls_flags_that_cannot_work_are_one_line_errors(model_root, flags, message):
    done = subprocess.run([sys.executable, "-m", "pdserving.serve", "--model",
                           str(model_root / "ocr_det_model"), "--port", str(free_port()),
                           *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
