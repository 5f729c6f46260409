"""Shared fixtures: the bundled models and the real services, started once per test session."""

import base64
import json
import sys
from pathlib import Path

import httpx
import pytest

from pdserving import package
from pdserving.launcher import ServerProcess, model_server
from pdserving.net import free_port

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    """A folder holding ocr_det_model/, ocr_rec_model/, ocr_cls_model/ and their client folders."""
    root = tmp_path_factory.mktemp("models")
    for name in ("ocr_det", "ocr_rec", "ocr_cls"):
        package.get_model(name, root)
    return root


def script(name: str, *args: str, port: int) -> ServerProcess:
    """A top-level script (``ocr_web_server.py`` ...) as a user runs it, on a 127.0.0.1 port."""
    argv = [sys.executable, str(ROOT / name), *args, "--host", "127.0.0.1", "--port", str(port)]
    return ServerProcess(argv, name, f"127.0.0.1:{port}")


class Service:
    """A running web service: its process and its URL."""

    def __init__(self, proc: ServerProcess):
        self.proc = proc
        self.base = f"http://{proc.endpoint}"
        self.url = self.base + "/ocr/prediction"

    def post(self, images: list[bytes], fetch=("res",), timeout: float = 60) -> httpx.Response:
        body = {"feed": [{"image": base64.b64encode(b).decode()} for b in images],
                "fetch": list(fetch)}
        return httpx.post(self.url, json=body, timeout=timeout)


def _service(proc: ServerProcess):
    proc.start(timeout=120)
    try:
        yield Service(proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def det_server(model_root):
    """The det model server of standard mode (``python -m pdserving.serve``)."""
    with model_server(model_root / "ocr_det_model", free_port(20000)) as server:
        yield server


@pytest.fixture(scope="session")
def fast_ocr(model_root):
    yield from _service(script("ocr_local_server.py", "cpu", "--model_root", str(model_root),
                               port=free_port(21000)))


@pytest.fixture(scope="session")
def fast_ocr_paddle(model_root):
    """The fast service on Paddle Inference, to compare the engines."""
    yield from _service(script("ocr_local_server.py", "cpu", "--engine", "paddle",
                               "--model_root", str(model_root), port=free_port(21050)))


@pytest.fixture(scope="session")
def standard_ocr(model_root, det_server):
    yield from _service(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                               "--det_endpoints", det_server.endpoint,
                               "--model_port", str(free_port(22000)),
                               port=free_port(21100)))


@pytest.fixture(scope="session")
def pir_model(tmp_path_factory) -> Path:
    """A Paddle 3 PIR model folder (inference.json): Paddle runs it, OpenVINO cannot read it."""
    from models import write_pir_model

    return write_pir_model(tmp_path_factory.mktemp("pir"))


@pytest.fixture(scope="session")
def argmax_model(model_root, tmp_path_factory) -> Path:
    """A legacy .pdmodel OpenVINO's frontend fails to convert (the cls model + arg_max(-1))."""
    from models import write_argmax_last_axis_model

    return write_argmax_last_axis_model(model_root / "ocr_cls_model",
                                        tmp_path_factory.mktemp("argmax") / "model")


@pytest.fixture(scope="session")
def samples() -> dict[str, tuple[bytes, list[str]]]:
    """Sample file name -> (file bytes, expected lines)."""
    labels = json.loads((SAMPLES / "labels.json").read_text(encoding="utf-8"))
    return {name: ((SAMPLES / name).read_bytes(), lines) for name, lines in labels.items()}
