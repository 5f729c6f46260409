"""API keys on the pipeline service (docs/design.md §2.11): its HTTP side refuses a request
without one of its keys with 401 in the pipeline's reply shape, its gRPC side with
UNAUTHENTICATED; either key is answered; the client scripts send ``--api_key``."""

from __future__ import annotations

import subprocess
import sys

import grpc
import httpx
import pytest

from pdserving.auth import CLIENT_ENV
from pdserving.proto import pipeline_service_pb2 as pb
from tests.helpers.images import b64
from tests.helpers.paths import ROOT
from tests.pipeline_serving.test_service import start

pytestmark = pytest.mark.e2e

OLD, NEW, WRONG = "old-key-7f3a9c", "new-key-2b8e1d", "wrong-key-0000"


@pytest.fixture(scope="module")
def keyed(model_root, tmp_path_factory):
    service = start("web_service_rec.py", model_root, tmp_path_factory,
                    "--api_key", OLD, "--api_key", NEW)
    yield service
    service.channel.close()
    service.proc.stop()


@pytest.fixture(scope="module")
def image(samples) -> str:
    return b64(samples["sign_exit.jpg"][0])


@pytest.mark.parametrize("headers, message", [
    ({}, "missing API key"), ({"Authorization": f"Bearer {WRONG}"}, "wrong API key")],
    ids=["none", "wrong"])
def test_http_without_a_right_key_is_401_in_the_reply_shape(keyed, image, headers, message):
    r = httpx.post(keyed.url, json={"key": ["image"], "value": [image]}, headers=headers,
                   timeout=60)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    reply = r.json()
    assert reply["err_no"] == 401 and reply["err_msg"].startswith(message)
    assert reply["key"] == [] and reply["value"] == [] and WRONG not in r.text


def test_http_and_grpc_answer_either_key(keyed, image):
    for headers in ({"Authorization": f"Bearer {OLD}"}, {"X-API-Key": NEW}):
        r = httpx.post(keyed.url, json={"key": ["image"], "value": [image]}, headers=headers,
                       timeout=60)
        assert r.status_code == 200 and r.json()["err_no"] == 0, r.text
    for key in (OLD, NEW):
        reply = keyed.call(pb.Request(key=["image"], value=[image]), timeout=60,
                           metadata=(("authorization", f"Bearer {key}"),))
        assert reply.err_no == 0, reply.err_msg


@pytest.mark.parametrize("metadata", [(), (("authorization", f"Bearer {WRONG}"),)],
                         ids=["none", "wrong"])
def test_grpc_without_a_right_key_is_unauthenticated(keyed, image, metadata):
    with pytest.raises(grpc.RpcError) as refused:
        keyed.call(pb.Request(key=["image"], value=[image]), timeout=60, metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("script, flag", [("pipeline_http_client.py", "--url"),
                                          ("pipeline_rpc_client.py", "--endpoint")])
def test_client_scripts_send_their_key(keyed, samples, tmp_path, monkeypatch, script, flag):
    (tmp_path / "sign_exit.jpg").write_bytes(samples["sign_exit.jpg"][0])
    where = keyed.url if flag == "--url" else keyed.rpc_endpoint
    monkeypatch.delenv(CLIENT_ENV, raising=False)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / script), "--image_dir", str(tmp_path),
                               flag, where, *args], capture_output=True, text=True, timeout=120)

    refused = run()
    assert refused.returncode == 1
    assert ("err_no:401" in refused.stdout if flag == "--url"
            else "UNAUTHENTICATED" in refused.stderr), refused.stdout + refused.stderr
    answered = run("--api_key", NEW)
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert "err_no:0" in answered.stdout
    for output in (refused.stdout + refused.stderr, answered.stdout + answered.stderr,
                   "\n".join(keyed.proc.output)):
        assert NEW not in output and OLD not in output
