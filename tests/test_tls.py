"""TLS, with a CA and certificates made here: on the model server's port (gRPC and HTTP still
sharing it, routed by ALPN), the web services, standard mode's calls to its det server, and the
pipeline service's two sides. Our clients with the CA are answered; clients without it, or
speaking plain, are refused; mutual TLS refuses a client without a certificate."""

from __future__ import annotations

import ast
import json
import ssl
import subprocess
import sys

import grpc
import httpx
import numpy as np
import pytest

from pdserving.errors import Unavailable
from pdserving.launcher import ServerProcess, model_server
from pdserving.net import free_port
from pdserving.pipeline_serving.client import PipelineClient
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.rpc.client import RemoteModel
from pdserving.rpc.codec import to_tensor
from pdserving.tls import ClientTls, alpn_offered
from tests.helpers.images import b64
from tests.helpers.paths import ROOT, SAMPLES
from tests.helpers.servers import body, script, started
from tests.helpers.tls import make_pki
from tests.pipeline_serving.test_service import image_request
from tests.pipeline_serving.test_service import start as start_pipeline

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


# The web services and the pipeline service, and the kit's clients of each.

@pytest.fixture(scope="module")
def tls_fast(model_root, pki):
    """The fast OCR service over HTTPS."""
    with started(script("ocr_local_server.py", "cpu", "--model_root", str(model_root),
                        *tls_flags(pki))) as service:
        yield f"https://{service.proc.endpoint}"


def test_the_web_service_answers_over_https_only(tls_fast, pki, samples):
    image, lines = samples["doc_english.png"]
    reply = httpx.post(tls_fast + "/ocr/prediction", json=body(image), timeout=60,
                       verify=ClientTls(str(pki.ca)).ssl_context())
    assert reply.status_code == 200 and reply.json()["result"]["res"] == lines
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(tls_fast + "/health", verify=ClientTls(str(pki.other_ca)).ssl_context())
    with pytest.raises(httpx.TransportError):
        httpx.get(tls_fast.replace("https:", "http:") + "/health", timeout=10)


def test_the_web_client_speaks_tls_with_the_ca(tls_fast, pki, samples):
    def client(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "ocr_web_client.py"), str(SAMPLES),
                               "--url", tls_fast + "/ocr/prediction", *flags],
                              capture_output=True, text=True, timeout=300)

    done = client("--tls_ca", str(pki.ca))
    assert done.returncode == 0, done.stderr
    assert samples["doc_english.png"][1][0] in done.stdout
    refused = client()  # the system's CAs do not know ours
    assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    wrong = client("--tls_cert", str(pki.client_cert))
    assert wrong.returncode == 2 and "--tls_cert and --tls_key go together" in wrong.stderr


def test_standard_mode_with_keys_calls_its_det_server_over_mutual_tls(model_root, pki, samples,
                                                                       tmp_path):
    """The README's exposed standard mode: keys and TLS on both servers, together."""
    keys = tmp_path / "keys.txt"
    keys.write_text("# ours\nreadme-key\n")
    with model_server(model_root / "ocr_det_model", free_port(),
                      extra_args=[*tls_flags(pki, mutual=True), "--api_key_file", str(keys)],
                      ) as det_server, \
            started(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                           "--det_endpoints", det_server.endpoint, "--model_port",
                           str(free_port()), *tls_flags(pki), "--api_key_file", str(keys),
                           "--det_tls_ca", str(pki.ca), "--det_tls_cert", str(pki.client_cert),
                           "--det_tls_key", str(pki.client_key))) as web:
        image, lines = samples["doc_english.png"]
        url = f"https://{web.proc.endpoint}/ocr/prediction"
        verify = ClientTls(str(pki.ca)).ssl_context()
        reply = httpx.post(url, json=body(image), timeout=60, verify=verify,
                           headers={"Authorization": "Bearer readme-key"})
        assert reply.status_code == 200 and reply.json()["result"]["res"] == lines
        assert httpx.post(url, json=body(image), timeout=60, verify=verify).status_code == 401


def test_the_pipeline_service_answers_https_and_grpc_with_tls(model_root, pki, samples,
                                                             tmp_path_factory):
    service = start_pipeline("web_service.py", model_root, tmp_path_factory, *tls_flags(pki))
    try:
        image, lines = samples["doc_english.png"]
        http = service.base.replace("http:", "https:") + "/ocr/prediction"
        reply = httpx.post(http, content=json.dumps(image_request(image)), timeout=60,
                           verify=ClientTls(str(pki.ca)).ssl_context())
        assert reply.json()["err_no"] == 0
        assert [text for (text, _), _ in ast.literal_eval(reply.json()["value"][0])] == lines
        client = PipelineClient()
        client.connect([service.rpc_endpoint], ClientTls(str(pki.ca)))
        try:
            assert client.predict({"image": b64(image)}, timeout=60).value == reply.json()["value"]
        finally:
            client.close()
        rpc_client = subprocess.run(
            [sys.executable, str(ROOT / "pipeline_rpc_client.py"), "--image_dir", str(SAMPLES),
             "--endpoint", service.rpc_endpoint, "--tls_ca", str(pki.ca)],
            capture_output=True, text=True, timeout=300)
        assert rpc_client.returncode == 0, rpc_client.stderr
        with pytest.raises(grpc.RpcError) as refused:
            service.grpc(key=["image"], value=[b64(image)])  # a plain channel
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        service.channel.close()
        service.proc.stop()


# The 2020 WebService has no flags: its TLS comes from the environment (or prepare_server).
WEB_SERVICE = """
import sys
from pdserving.compat.web_service import WebService

service = WebService("ocr")
service.load_model_config(sys.argv[1])
service.prepare_server(workdir="workdir", port=int(sys.argv[2]), device="cpu")
service.run_debugger_service()
service.run_web_service()
"""


def test_the_2020_web_service_takes_tls_from_the_environment(model_root, pki):
    port = free_port()
    env = {"PDSERVING_TLS_CERT": str(pki.server_cert), "PDSERVING_TLS_KEY": str(pki.server_key)}
    server = ServerProcess([sys.executable, "-c", WEB_SERVICE, str(model_root / "ocr_det_model"),
                            str(port)], "2020 WebService", extra_env=env)
    with server:
        assert "https://" in server.ready_line
        base = f"https://127.0.0.1:{port}"
        reply = httpx.get(base + "/health", verify=ClientTls(str(pki.ca)).ssl_context())
        assert reply.status_code == 200
        with pytest.raises(httpx.TransportError):
            httpx.get(base.replace("https:", "http:") + "/health", timeout=10)
