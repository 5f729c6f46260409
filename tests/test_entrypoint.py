"""The container image's command (pdserving.entrypoint), on the host: which command a mode runs
with which arguments, the healthcheck's probe against real servers, and the models it writes.
tests/container runs it in the image."""

from __future__ import annotations

import json

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from pdserving import entrypoint
from pdserving.net import free_port
from tests.helpers.servers import serve


@pytest.mark.parametrize("argv, mode, args", [
    ([], "fast", ["cpu"]),
    (["--family", "PP-OCRv6_tiny"], "fast", ["cpu", "--family", "PP-OCRv6_tiny"]),
    (["fast", "gpu", "--gpu_ids", "0"], "fast", ["gpu", "--gpu_ids", "0"]),
    (["standard", "--det_endpoints", "det:9293"], "standard",
     ["cpu", "--det_endpoints", "det:9293"]),
    (["det"], "det", ["--model", "ocr_det_model", "--port", "9293"]),
    (["det", "--port", "9400"], "det", ["--model", "ocr_det_model", "--port", "9293",
                                        "--port", "9400"]),
])
def test_the_first_word_picks_the_mode(argv, mode, args):
    assert entrypoint.split(argv) == (mode, args)


@pytest.mark.parametrize("argv, probe", [
    ([], {"kind": "http", "port": 9292}),
    (["--port", "8080"], {"kind": "http", "port": 8080}),
    (["standard", "--port=8081"], {"kind": "http", "port": 8081}),
    (["det"], {"kind": "grpc", "port": 9293}),
    (["det", "--port", "9400"], {"kind": "grpc", "port": 9400}),
])
def test_the_probe_follows_the_port_flag(argv, probe):
    assert entrypoint.probe(*entrypoint.split(argv)) == probe


@pytest.fixture
def probe_file(tmp_path, monkeypatch):
    path = tmp_path / "probe.json"
    monkeypatch.setattr(entrypoint, "PROBE_FILE", path)
    monkeypatch.setattr(entrypoint, "HEALTH_TIMEOUT_S", 1.0)
    return path


def health_app(status: int) -> Starlette:
    return Starlette(routes=[Route("/health", lambda _: JSONResponse({}, status_code=status))])


def test_health_passes_when_the_web_service_answers(probe_file):
    with serve(health_app(200)) as base:
        probe_file.write_text(json.dumps({"kind": "http", "port": int(base.rsplit(":", 1)[1])}))
        assert entrypoint.main(["health"]) == 0


def test_health_fails_on_an_error_status(probe_file, capsys):
    with serve(health_app(503)) as base:
        probe_file.write_text(json.dumps({"kind": "http", "port": int(base.rsplit(":", 1)[1])}))
        assert entrypoint.main(["health"]) == 1
    assert "unhealthy" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_health_fails_when_nothing_listens(probe_file, capsys, kind):
    port = free_port()
    probe_file.write_text(json.dumps({"kind": kind, "port": port}))
    assert entrypoint.main(["health"]) == 1
    assert f"unhealthy: 127.0.0.1:{port}" in capsys.readouterr().err


def test_health_passes_when_the_model_server_accepts_grpc(probe_file, det_server):
    port = int(det_server.endpoint.rsplit(":", 1)[1])
    probe_file.write_text(json.dumps({"kind": "grpc", "port": port}))
    assert entrypoint.main(["health"]) == 0


def test_health_refuses_a_broken_probe_file(probe_file, capsys):
    probe_file.write_text("{not json")
    assert entrypoint.main(["health"]) == 1
    assert "unhealthy" in capsys.readouterr().err


def test_a_mode_notes_its_probe_then_runs_its_command(probe_file, tmp_path, capsys):
    """``det`` with a folder that is not a model: the model server's own one-line error and
    exit code, after the probe was noted."""
    assert entrypoint.main(["det", "--model", str(tmp_path / "nothing"), "--port", "9555"]) == 2
    assert "error" in capsys.readouterr().err
    assert json.loads(probe_file.read_text()) == {"kind": "grpc", "port": 9555}


def test_models_writes_the_default_familys_folders(tmp_path, capsys):
    assert entrypoint.main(["models", "--model_root", str(tmp_path)]) == 0
    for name in ("ocr_det", "ocr_rec", "ocr_cls"):
        assert (tmp_path / f"{name}_model").is_dir() and (tmp_path / f"{name}_client").is_dir()
    assert not list(tmp_path.glob("*.tar.gz"))  # no archive copies in an image
