"""``python -m pdserving.serve``: start-up failures are one line and a non-zero exit, a started
server says ready and stops cleanly on SIGTERM/SIGINT."""

import signal
import socket
import subprocess
import sys
import time

import pytest

from pdserving.launcher import free_port, model_server
from pdserving.serve import engine_options, parse_args
from tests.rpc_util import ROOT


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pdserving.serve", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0]


def test_gpu_on_a_cpu_build_exits_at_once_saying_so(model_root):
    started = time.monotonic()
    result = run_serve("--model", str(model_root / "ocr_det_model"),
                       "--port", str(free_port(23400)), "--gpu_ids", "0")
    assert_one_line_error(result, "no CUDA support", "requirements-gpu.txt")
    assert time.monotonic() - started < 20


def test_port_in_use_is_one_line(model_root):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--model", str(model_root / "ocr_det_model"), "--port", str(port),
                           "--host", "127.0.0.1")
    assert_one_line_error(result, f"127.0.0.1:{port}", "in use")


def test_missing_and_non_model_folders_are_one_line(tmp_path):
    assert_one_line_error(run_serve("--model", str(tmp_path / "nope")), "not found")
    assert_one_line_error(run_serve("--model", str(tmp_path)), "no Paddle inference model")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ready_line_then_graceful_stop(model_root, sig):
    server = model_server(model_root / "ocr_det_model", free_port(23300),
                          extra_args=["--thread", "1"]).start()
    server.proc.send_signal(sig)
    assert server.proc.wait(10) == 0
    server.stop()


@pytest.mark.parametrize("argv,gpu_id", [
    ([], None), (["--gpu_ids", "1,2"], 1), (["--device", "gpu"], 0),
    (["--device", "cpu", "--gpu_ids", "0"], None),
])
def test_device_selection(argv, gpu_id):
    assert engine_options(parse_args(["--model", "m", *argv])).gpu_id == gpu_id


def test_engine_flags():
    default = engine_options(parse_args(["--model", "m"]))
    assert (default.mkldnn, default.ir_optim, default.mem_optim, default.threads) == \
        (True, True, True, 1)
    off = engine_options(parse_args(["--model", "m", "--no-use_mkl", "--no-ir_optim",
                                     "--mem_optim_off", "--cpu_math_thread_num", "3"]))
    assert (off.mkldnn, off.ir_optim, off.mem_optim, off.threads) == (False, False, False, 3)


def test_a_missing_bundled_model_folder_is_written_then_served(tmp_path):
    """``--model ocr_det_model`` works without ``package --get_model`` first (no network)."""
    import numpy as np

    from pdserving.launcher import free_port, model_server
    from pdserving.rpc.client import RemoteModel

    with model_server(tmp_path / "ocr_det_model", free_port(25500)) as server:
        model = RemoteModel([server.endpoint], feed_name="image")
        assert model(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
        model.close()
    assert (tmp_path / "ocr_det_model" / "serving_server_conf.prototxt").is_file()
    assert (tmp_path / "ocr_det_client" / "serving_client_conf.prototxt").is_file()
