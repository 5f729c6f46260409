"""``python -m pdserving.serve``: start-up failures are one line and a non-zero exit, a started
server says ready, answers gRPC and HTTP on its port, and stops cleanly on SIGTERM/SIGINT."""

import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from pdserving.launcher import model_server
from pdserving.net import bind, free_port
from pdserving.serve import engine_options, parse_args
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.e2e


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
                       "--port", str(free_port()), "--gpu_ids", "0")
    assert_one_line_error(result, "no CUDA support", "requirements-gpu.txt")
    assert time.monotonic() - started < 20


def test_port_in_use_is_one_line(model_root):
    with bind("127.0.0.1", 0) as taken:
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--model", str(model_root / "ocr_det_model"), "--port", str(port),
                           "--host", "127.0.0.1")
    assert_one_line_error(result, f"127.0.0.1:{port}", "in use")


def test_missing_and_non_model_folders_are_one_line(tmp_path):
    assert_one_line_error(run_serve("--model", str(tmp_path / "nope")), "not found")
    assert_one_line_error(run_serve("--model", str(tmp_path)), "no inference model")


def test_openvino_on_a_gpu_is_one_line(model_root):
    result = run_serve("--model", str(model_root / "ocr_det_model"),
                       "--port", str(free_port()), "--device", "gpu", "--engine", "openvino")
    assert_one_line_error(result, "openvino runs on the CPU only", "--engine paddle")


@pytest.mark.parametrize("argv,engine", [([], "openvino"), (["--engine", "paddle"], "paddle")])
def test_ready_line_names_the_engine(model_root, argv, engine):
    with model_server(model_root / "ocr_det_model", free_port(),
                      extra_args=["--thread", "1", *argv]) as server:
        assert server.ready_line.endswith(f"(ocr_det_model, engine {engine})")
        assert server.engine == engine


def test_a_model_openvino_cannot_read_is_served_by_paddle(pir_model, tmp_path):
    """A converted Paddle 3 (PIR) model: a one-line notice, then served all the same."""
    from pdserving.convert import inference_model_to_serving
    from pdserving.rpc.client import Client

    inference_model_to_serving(pir_model, tmp_path / "server", tmp_path / "client")
    with model_server(tmp_path / "server", free_port()) as server:
        assert server.engine == "paddle"
        [notice] = [ln for ln in server.output if ln.startswith("notice:")]
        assert "OpenVINO reads .pdmodel programs, not Paddle 3 PIR" in notice
        client = Client()
        client.load_client_config(str(tmp_path / "client" / "serving_client_conf.prototxt"))
        client.connect([server.endpoint])
        out = client.predict(feed={"x": np.ones((1, 4), np.float32),
                                   "ids": np.ones((1, 2, 5), np.int64)},
                             fetch=list(client.fetches), batch=True)
        assert out[list(client.fetches)[0]].shape == (1, 3)


def test_one_port_answers_grpc_and_http(det_server):
    """Paddle Serving 0.9's clients: our gRPC client, and HttpClient's JSON (typed fields)."""
    from pdserving.rpc.client import RemoteModel

    x = np.zeros((1, 3, 32, 64), np.float32)
    model = RemoteModel([det_server.endpoint], feed_name="image")
    assert model(x).shape == (1, 1, 32, 64)
    model.close()
    tensor = {"float_data": x.reshape(-1).tolist(), "shape": list(x.shape), "elem_type": 1,
              "name": "x", "alias_name": "image"}
    reply = httpx.post(f"http://{det_server.endpoint}/GeneralModelService/inference",
                       json={"tensor": [tensor], "fetch_var_names": [], "log_id": 1}, timeout=30)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
    out = reply.json()["outputs"][0]["tensor"][0]
    assert out["shape"] == [1, 1, 32, 64] and len(out["float_data"]) == 32 * 64


def test_no_http_is_grpc_alone_straight_on_the_port(model_root):
    """What the standard services start for their own model: our client only, no relay."""
    from pdserving.rpc.client import RemoteModel

    with model_server(model_root / "ocr_det_model", free_port(),
                      extra_args=["--thread", "1", "--no-http"]) as server:
        model = RemoteModel([server.endpoint], feed_name="image")
        assert model(np.zeros((1, 3, 32, 64), np.float32)).shape == (1, 1, 32, 64)
        model.close()
        with pytest.raises(httpx.HTTPError):  # grpcio itself: no HTTP/1.1 answer
            httpx.post(f"http://{server.endpoint}/GeneralModelService/inference", json={},
                       timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ready_line_then_graceful_stop(model_root, sig):
    server = model_server(model_root / "ocr_det_model", free_port(),
                          extra_args=["--thread", "1"]).start()
    server.proc.send_signal(sig)
    assert server.proc.wait(10) == 0
    server.stop()


@pytest.mark.parametrize("argv,gpu_ids", [
    ([], ()), (["--gpu_ids", "1,2"], (1, 2)), (["--device", "gpu"], (0,)),
    (["--device", "cpu", "--gpu_ids", "0"], ()),
])
def test_device_selection(argv, gpu_ids):
    options = engine_options(parse_args(["--model", "m", *argv]))
    assert options.gpu_ids == gpu_ids
    assert options.engine == ("paddle" if gpu_ids else "openvino")  # the defaults
    assert options.precision == "fp32"


def test_engine_flags():
    default = engine_options(parse_args(["--model", "m"]))
    assert (default.mkldnn, default.ir_optim, default.mem_optim, default.threads) == \
        (True, True, True, None)  # the engine's own default (EngineOptions.sized)
    off = engine_options(parse_args(["--model", "m", "--no-use_mkl", "--no-ir_optim",
                                     "--mem_optim_off", "--cpu_math_thread_num", "3"]))
    assert (off.mkldnn, off.ir_optim, off.mem_optim, off.threads) == (False, False, False, 3)


def test_a_missing_bundled_model_folder_is_written_then_served(tmp_path):
    """``--model ocr_det_model`` works without ``package --get_model`` first (no network)."""
    import numpy as np

    from pdserving.rpc.client import RemoteModel

    with model_server(tmp_path / "ocr_det_model", free_port()) as server:
        model = RemoteModel([server.endpoint], feed_name="image")
        assert model(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
        model.close()
    assert (tmp_path / "ocr_det_model" / "serving_server_conf.prototxt").is_file()
    assert (tmp_path / "ocr_det_client" / "serving_client_conf.prototxt").is_file()
