"""Standard mode with a dead, restarted or load-balanced det model server (issue 5)."""

import concurrent.futures
import os
import signal
import time

import httpx
import pytest

from pdserving.launcher import model_server
from pdserving.net import free_port, wait_until
from tests.helpers.servers import script, started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def det_pair(model_root):
    """Two det model servers, as two replicas behind ``--det_endpoints a,b``."""
    servers = [model_server(model_root / "ocr_det_model", free_port()).start(60)
               for _ in range(2)]
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def standard_pair(model_root, det_pair):
    endpoints = ",".join(s.endpoint for s in det_pair)
    with started(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                        "--det_endpoints", endpoints, "--model_port", str(free_port()))) as s:
        yield s


def test_one_of_two_det_servers_killed_under_load(standard_pair, det_pair, samples):
    """Requests go on through the live det server. At most the 4 requests running when det
    server 0 dies (the pool runs 4 at once) may fail, each with a JSON 503 naming the det
    servers; all sent once it is dead get their answer. (The RPC client retries calls in flight
    on a dead server, so none fails as a rule: tests/rpc/test_client.py holds it to that.)"""
    data, expected = samples["sign_shop.jpg"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        # The service's det channel is new: it connects to both servers under this load.
        before = [pool.submit(standard_pair.post, [data]) for _ in range(8)]
        det_pair[0].kill()  # returns once the process is gone
        after = [pool.submit(standard_pair.post, [data]) for _ in range(16)]
        before, after = [f.result() for f in before], [f.result() for f in after]
    failed = [r for r in before if r.status_code != 200]
    assert len(failed) <= 4, [r.text for r in failed]
    for r in failed:
        assert r.status_code == 503, r.text
        assert "det model server" in r.json()["err_msg"] and "Retry-After" in r.headers
    for r in after:
        assert r.status_code == 200, r.text
    for r in before + after:
        if r.status_code == 200:
            assert r.json()["result"]["res"] == expected
    assert httpx.get(standard_pair.base + "/ready", timeout=5).status_code == 200


def test_dead_det_server_gives_503_naming_it_then_recovers(model_root, samples):
    data, expected = samples["sign_exit.jpg"]
    det = model_server(model_root / "ocr_det_model", free_port()).start(60)
    proc = script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                  "--det_endpoints", det.endpoint, "--model_port", str(free_port()))
    try:
        with started(proc) as service:
            assert service.post([data]).json()["result"]["res"] == expected
            det.kill()
            sent = time.monotonic()
            r = service.post([data])
            assert r.status_code == 503
            assert time.monotonic() - sent < 5  # refused at once: no wait for the 20 s timeout
            assert det.endpoint in r.json()["err_msg"]
            assert "Retry-After" in r.headers
            ready = httpx.get(service.base + "/ready", timeout=5)
            assert ready.status_code == 503 and det.endpoint in ready.text
            assert httpx.get(service.base + "/health", timeout=5).status_code == 200

            det = model_server(model_root / "ocr_det_model", int(det.endpoint.split(":")[1]))
            det.start(60)
            wait_until(lambda: service.post([data]).status_code == 200, 20,
                       "a 200 once the det server is back", interval=0.2)
            assert service.post([data]).json()["result"]["res"] == expected
            assert httpx.get(service.base + "/ready", timeout=5).status_code == 200
    finally:
        det.stop()


def test_hung_det_server_times_out_with_503_then_recovers(model_root, samples):
    """A det server that stops answering (SIGSTOP) costs a request its timeout, not the service."""
    data, expected = samples["sign_exit.jpg"]
    det = model_server(model_root / "ocr_det_model", free_port()).start(60)
    proc = script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                  "--det_endpoints", det.endpoint, "--timeout", "3",
                  "--model_port", str(free_port()))
    try:
        with started(proc) as service:
            os.kill(det.proc.pid, signal.SIGSTOP)
            sent = time.monotonic()
            r = service.post([data])
            assert r.status_code == 503 and "request timed out" in r.json()["err_msg"]
            assert time.monotonic() - sent < 10
            assert httpx.get(service.base + "/health", timeout=5).status_code == 200
            os.kill(det.proc.pid, signal.SIGCONT)
            wait_until(lambda: service.post([data]).status_code == 200, 20,
                       "a 200 once the det server answers again", interval=0.2)
            assert service.post([data]).json()["result"]["res"] == expected
    finally:
        os.kill(det.proc.pid, signal.SIGCONT)
        det.stop()
