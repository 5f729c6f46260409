"""The service as a process (``pdserving.web.runner.run``): start, port in use, graceful stop."""

import contextlib
import signal
import threading
import time

import httpx
import pytest

from pdserving.net import bind, wait_until
from tests.helpers.servers import ScriptServer, body, predict_url


def test_prints_a_ready_line_once_listening():
    with ScriptServer() as server:
        port = server.cfg["port"]
        assert (f"pdserving sleepy service ready on http://127.0.0.1:{port}/ocr/prediction"
                in server.stdout)
        assert httpx.get(server.base + "/health").status_code == 200


def test_port_in_use_is_a_one_line_error_and_exit_code_1():
    with bind("127.0.0.1", 0) as taken:
        taken.listen()
        with contextlib.closing(ScriptServer(port=taken.getsockname()[1])) as server:
            with pytest.raises(RuntimeError, match="did not start"):
                server.start(timeout=30)
            assert server.proc.returncode == 1
            lines = server.stderr.strip().splitlines()
    assert lines == [f"error: cannot listen on 127.0.0.1:{server.cfg['port']}: "
                     "Address already in use"]


def _post_in_background(url: str, results: list) -> threading.Thread:
    def post():
        try:
            results.append(httpx.post(url, json=body(), timeout=30))
        except httpx.HTTPError as e:
            results.append(e)
    thread = threading.Thread(target=post)
    thread.start()
    return thread


def _wait_for_in_flight(base: str) -> None:
    wait_until(lambda: 'pdserving_requests_in_flight{service="sleepy"} 1.0'
               in httpx.get(base + "/metrics").text, 10, "the request in flight")


def test_sigterm_lets_the_request_in_flight_finish_then_runs_shutdown_callbacks(tmp_path):
    marker = tmp_path / "stopped"
    with ScriptServer(delay=1.5, marker=str(marker)) as server:
        results: list = []
        thread = _post_in_background(predict_url(server.base), results)
        _wait_for_in_flight(server.base)
        server.proc.send_signal(signal.SIGTERM)
        thread.join(20)
        code = server.proc.wait(20)
        assert results[0].status_code == 200, results
        assert results[0].json() == {"result": {"res": ["360x64"]}}
        assert marker.read_text() == "stopped"
        assert code == -signal.SIGTERM  # uvicorn re-raises the signal after the clean stop
        assert "Traceback" not in server.stderr


def test_graceful_stop_is_bounded_and_still_runs_shutdown_callbacks(tmp_path):
    marker = tmp_path / "stopped"
    with ScriptServer(delay=30, graceful=1, marker=str(marker)) as server:
        results: list = []
        thread = _post_in_background(predict_url(server.base), results)
        _wait_for_in_flight(server.base)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(20)
        assert time.monotonic() - start < 10
        assert marker.read_text() == "stopped"
        thread.join(20)


def test_ctrl_c_exits_130_without_a_traceback():
    with ScriptServer() as server:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(20) == 130
        assert "Traceback" not in server.stderr
