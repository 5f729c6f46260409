"""The GPU build (``make install-gpu``: PyPI's paddlepaddle-gpu in ``.venv-gpu``) on this machine.

The GPU path itself cannot run without a GPU. These tests show what can be shown here: the PyPI
GPU build installs beside the CPU one; it refuses a GPU request on a machine without a GPU in one
line; it still serves on the CPU, reading every sample as labelled; and the Paddle Config it
builds for a GPU request asks for what we mean (Paddle's getters read it without a device).

Skipped when ``.venv-gpu`` is missing, unless ``PDSERVING_REQUIRE_GPU_BUILD=1`` (as on CI, which
builds it): then every test fails, and the rest of the suite still runs.
"""

import json
import os
import shutil
import subprocess

import httpx
import pytest

from pdserving.engine.model_folder import ModelFolder
from pdserving.launcher import ServerProcess
from pdserving.net import free_port
from tests.helpers.paths import ROOT
from tests.helpers.servers import started

pytestmark = pytest.mark.gpu_build

GPU_PY = ROOT / ".venv-gpu/bin/python"
REQUIRE = "PDSERVING_REQUIRE_GPU_BUILD"
MISSING = "" if GPU_PY.is_file() else f"no GPU build: {GPU_PY} is missing (make install-gpu)"
if MISSING and os.environ.get(REQUIRE) != "1":
    pytest.skip(f"{MISSING}; set {REQUIRE}=1 to make this a failure", allow_module_level=True)


@pytest.fixture(autouse=True)
def gpu_build():
    # A failure per test, not at import: a collection error would stop the whole suite.
    if MISSING:
        pytest.fail(MISSING, pytrace=False)


def gpu_run(args: list, cwd, timeout: float) -> subprocess.CompletedProcess:
    """``args`` run by the GPU build's python in ``cwd``."""
    return subprocess.run([str(GPU_PY), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args", [
    [ROOT / "ocr_local_server.py", "gpu"],
    [ROOT / "ocr_web_server.py", "gpu", "--model_port", "PORT"],
    ["-m", "pdserving.serve", "--model", "ocr_det_model", "--gpu_ids", "0"],
], ids=["ocr_local_server", "ocr_web_server", "pdserving.serve"])
def test_gpu_without_a_gpu_is_a_one_line_error(args, model_root):
    args = [*args, "--host", "127.0.0.1", "--port", "PORT"]
    args = [free_port() if a == "PORT" else a for a in args]  # ports taken now, not at import
    out = gpu_run(args, model_root, timeout=60)
    lines = out.stderr.splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and "no CUDA device" in lines[0]


def test_the_gpu_build_reads_every_sample_on_the_cpu(model_root, samples):
    port = free_port()
    args = [GPU_PY, ROOT / "ocr_local_server.py", "cpu", "--host", "127.0.0.1", "--port", port]
    proc = ServerProcess(args, "ocr_local_server.py cpu (GPU build)", f"127.0.0.1:{port}",
                         cwd=model_root)
    with started(proc, timeout=180) as service:
        metrics = httpx.get(service.base + "/metrics", timeout=10).text
        for model in ("det", "rec"):
            assert f'pdserving_model_engine_info{{engine="paddle",model="{model}"}} 1.0' in metrics
        for name, (data, expected) in samples.items():
            r = service.post([data])
            assert r.status_code == 200, r.text
            assert r.json()["result"]["res"] == expected, name


# The Config predictor_config builds for a GPU request, read back through Paddle's own getters.
CONFIG = """
import json
from pdserving.engine import EngineOptions
from pdserving.engine.model_folder import ModelFolder
from pdserving.engine.paddle_engine import predictor_config

def read(**options):
    c = predictor_config(ModelFolder.read("ocr_det_model"),
                         EngineOptions(engine="paddle", **options).sized())
    return {"use_gpu": c.use_gpu(), "gpu_device_id": c.gpu_device_id(),
            "memory_pool_init_size_mb": c.memory_pool_init_size_mb(),
            "tensorrt_engine_enabled": c.tensorrt_engine_enabled(),
            "tensorrt_precision_mode": str(c.tensorrt_precision_mode()),
            "tuned_tensorrt_dynamic_shape": c.tuned_tensorrt_dynamic_shape(),
            "trt_allow_build_at_runtime": c.trt_allow_build_at_runtime()}

print(json.dumps([read(gpu_ids=(1,), use_trt=True, precision="fp16", gpu_mem_mb=300),
                  read(gpu_ids=(0,))]))
"""


def test_the_config_for_a_gpu_asks_what_we_mean(model_root, tmp_path):
    # A copy: TensorRT's shape ranges are collected into the model folder, not model_root's.
    shutil.copytree(model_root / "ocr_det_model", tmp_path / "ocr_det_model")
    out = gpu_run(["-c", CONFIG], tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    trt, plain = json.loads(out.stdout.splitlines()[-1])
    assert trt == {"use_gpu": True, "gpu_device_id": 1, "memory_pool_init_size_mb": 300,
                   "tensorrt_engine_enabled": True, "tensorrt_precision_mode": "Precision.Half",
                   "tuned_tensorrt_dynamic_shape": True, "trt_allow_build_at_runtime": True}
    assert (plain["use_gpu"], plain["gpu_device_id"], plain["tensorrt_engine_enabled"]) == (
        True, 0, False)


def test_both_builds_write_the_same_rec_model_folder(model_root, tmp_path):
    # Paddle 2.6 would fetch copies (save_infer_model/scale_*) where Paddle 3 fetches the
    # outputs themselves; with the copies removed, the fetch names do not depend on the build.
    out = gpu_run(["-m", "pdserving.package", "--get_model", "ocr_rec"], tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not out.stderr  # no import warnings on a CLI's stderr
    folders = [ModelFolder.read(root / "ocr_rec_model") for root in (model_root, tmp_path)]
    assert folders[0].fetches == folders[1].fetches
    assert folders[1].best_path_classes == 6625
    conf = "ocr_rec_client/serving_client_conf.prototxt"
    assert (tmp_path / conf).read_text() == (model_root / conf).read_text()
