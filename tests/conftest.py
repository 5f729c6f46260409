"""Shared fixtures: the bundled models and the real services, started once per test session.

Helpers (paths, images, test models, servers) are in ``tests/helpers``.
"""

import json
import signal
from pathlib import Path

import pytest

from pdserving import package
from pdserving.launcher import model_server
from pdserving.net import free_port
from tests.helpers.paths import SAMPLES
from tests.helpers.servers import script, started


def pytest_configure(config):
    """Children get Ctrl-C as in a terminal. A shell starts background jobs with SIGINT ignored,
    and that survives exec into every child; a handler does not (exec resets it to the default
    action). Set here rather than in each child between fork and exec (``preexec_fn``): Python
    code run there, with gRPC's threads alive in this process, crashed a child in CI."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    """A folder holding ocr_det_model/, ocr_rec_model/, ocr_cls_model/ and their client folders,
    of PP-OCRv4 mobile: the family both engines run (tests/test_families.py runs the others)."""
    root = tmp_path_factory.mktemp("models")
    for name in ("ocr_det", "ocr_rec", "ocr_cls"):
        package.get_model(name, root, "PP-OCRv4_mobile")
    return root


@pytest.fixture(scope="session")
def det_server(model_root):
    """The det model server of standard mode (``python -m pdserving.serve``)."""
    with model_server(model_root / "ocr_det_model", free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def fast_ocr(model_root):
    with started(script("ocr_local_server.py", "cpu", "--model_root", str(model_root))) as s:
        yield s


@pytest.fixture(scope="session")
def fast_ocr_paddle(model_root):
    """The fast service on Paddle Inference, to compare the engines."""
    with started(script("ocr_local_server.py", "cpu", "--engine", "paddle",
                        "--model_root", str(model_root))) as s:
        yield s


@pytest.fixture(scope="session")
def standard_ocr(model_root, det_server):
    with started(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                        "--det_endpoints", det_server.endpoint,
                        "--model_port", str(free_port()))) as s:
        yield s


@pytest.fixture(scope="session")
def pir_model(tmp_path_factory) -> Path:
    """A Paddle 3 PIR model folder (inference.json): Paddle runs it, OpenVINO cannot read it."""
    from tests.helpers.models import write_pir_model

    return write_pir_model(tmp_path_factory.mktemp("pir"))


@pytest.fixture(scope="session")
def argmax_model(model_root, tmp_path_factory) -> Path:
    """A legacy .pdmodel OpenVINO's frontend fails to convert (the cls model + arg_max(-1))."""
    from tests.helpers.models import write_argmax_last_axis_model

    return write_argmax_last_axis_model(model_root / "ocr_cls_model",
                                        tmp_path_factory.mktemp("argmax") / "model")


@pytest.fixture(scope="session")
def samples() -> dict[str, tuple[bytes, list[str]]]:
    """Sample file name -> (file bytes, expected lines)."""
    labels = json.loads((SAMPLES / "labels.json").read_text(encoding="utf-8"))
    return {name: ((SAMPLES / name).read_bytes(), lines) for name, lines in labels.items()}


@pytest.fixture
def gpus(monkeypatch):
    """``gpus(n)``: Paddle is a CUDA build that sees n devices (patched: this machine has none)."""
    from pdserving.engine import paddle_engine

    def see(count: int) -> None:
        monkeypatch.setattr(paddle_engine, "cuda_available", lambda: True)
        monkeypatch.setattr(paddle_engine, "cuda_device_count", lambda: count)
    return see
