"""Standard mode with a dead, restarted or load-balanced det model server (issue 5)."""

import concurrent.futures
import time

import httpx
import pytest

from conftest import Service, _service, script
from pdserving.launcher import model_server
from pdserving.net import free_port


@pytest.fixture(scope="module")
def det_pair(model_root):
    """Two det model servers, as two replicas behind ``--det_endpoints a,b``."""
    servers = [model_server(model_root / "ocr_det_model", free_port(port)).start(60)
               for port in (24000, 24100)]
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def standard_pair(model_root, det_pair):
    endpoints = ",".join(s.endpoint for s in det_pair)
    yield from _service(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                               "--det_endpoints", endpoints,
                               "--model_port", str(free_port(24200)), port=free_port(24300)))


def wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_one_of_two_det_servers_killed_under_load(standard_pair, det_pair, samples):
    data, expected = samples["sign_shop.jpg"]
    statuses = []
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(standard_pair.post, [data]) for _ in range(8)]
        det_pair[0].kill()
        futures += [pool.submit(standard_pair.post, [data]) for _ in range(16)]
        for f in futures:
            r = f.result()
            statuses.append(r.status_code)
            assert r.status_code == 200, r.text
            assert r.json()["result"]["res"] == expected
    assert len(statuses) == 24
    assert httpx.get(standard_pair.base + "/ready", timeout=5).status_code == 200


def test_dead_det_server_gives_503_naming_it_then_recovers(model_root, samples):
    data, expected = samples["sign_exit.jpg"]
    det = model_server(model_root / "ocr_det_model", free_port(24400)).start(60)
    proc = script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                  "--det_endpoints", det.endpoint, "--model_port", str(free_port(24500)),
                  port=free_port(24600))
    gen = _service(proc)
    service: Service = next(gen)
    try:
        assert service.post([data]).json()["result"]["res"] == expected
        det.kill()
        r = service.post([data])
        assert r.status_code == 503
        assert det.endpoint in r.json()["err_msg"]
        assert "Retry-After" in r.headers
        ready = httpx.get(service.base + "/ready", timeout=5)
        assert ready.status_code == 503 and det.endpoint in ready.text
        assert httpx.get(service.base + "/health", timeout=5).status_code == 200

        det = model_server(model_root / "ocr_det_model", int(det.endpoint.split(":")[1]))
        det.start(60)
        assert wait_until(lambda: service.post([data]).status_code == 200)
        assert service.post([data]).json()["result"]["res"] == expected
        assert httpx.get(service.base + "/ready", timeout=5).status_code == 200
    finally:
        gen.close()
        det.stop()


def test_hung_det_server_times_out_with_503_then_recovers(model_root, samples):
    """A det server that stops answering (SIGSTOP) costs a request its timeout, not the service."""
    import os
    import signal

    data, expected = samples["sign_exit.jpg"]
    det = model_server(model_root / "ocr_det_model", free_port(24700)).start(60)
    gen = _service(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                          "--det_endpoints", det.endpoint, "--timeout", "3",
                          "--model_port", str(free_port(24800)), port=free_port(24900)))
    service: Service = next(gen)
    try:
        os.kill(det.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        r = service.post([data])
        assert r.status_code == 503 and "timed out" in r.json()["err_msg"]
        assert time.monotonic() - started < 10
        assert httpx.get(service.base + "/health", timeout=5).status_code == 200
        os.kill(det.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: service.post([data]).status_code == 200)
        assert service.post([data]).json()["result"]["res"] == expected
    finally:
        os.kill(det.proc.pid, signal.SIGCONT)
        gen.close()
        det.stop()
