"""The GPU flags of the scripts and the model server, on a machine without a GPU: what reaches
the model server a service starts, and the one-line refusals."""

import subprocess
import sys

import pytest

from pdserving import cli, launcher
from pdserving.engine import GPU_START_TIMEOUT_S, EngineOptions, engine_flags
from pdserving.net import free_port
from pdserving.serve import engine_options, parse_args
from tests.helpers.paths import ROOT


def test_the_rec_model_server_gets_the_services_gpu_settings(model_root, gpus, monkeypatch):
    gpus(2)
    started = {}

    class Child:  # stands in for the rec model server: here only its arguments are checked
        def __init__(self, model_dir, port, extra_args):
            started.update(model_dir=model_dir, args=extra_args)

        def start(self, timeout):
            started["timeout"] = timeout
            raise RuntimeError("not started in this test")

        def stop(self):
            pass

    monkeypatch.setattr(launcher, "model_server", Child)
    assert cli.ocr_web_server(["gpu", "--gpu_ids", "0,1", "--use_trt", "--precision", "fp16",
                               "--gpu_mem", "800", "--model_root", str(model_root)]) == 1
    assert started["model_dir"].name == "ocr_rec_model"
    assert started["timeout"] == GPU_START_TIMEOUT_S  # TensorRT builds engines at first start
    child_args = parse_args(["--model", "m", *started["args"]])
    assert not child_args.http  # only the service's own client calls it: gRPC alone
    child = engine_options(child_args)
    assert child == EngineOptions(engine="paddle", gpu_ids=(0, 1), instances=2, threads=1,
                                  precision="fp16", gpu_mem_mb=800, use_trt=True)


@pytest.mark.parametrize("options", [
    EngineOptions(), EngineOptions(engine="paddle", threads=3, instances=2),
    EngineOptions(engine="paddle", gpu_ids=(1, 0), use_trt=True, precision="fp16",
                  gpu_mem_mb=2000),
    EngineOptions(engine="paddle", mkldnn=False, ir_optim=False, mem_optim=False),
])
def test_engine_flags_say_the_options_to_the_model_server(options):
    options = options.sized()
    assert engine_options(parse_args(["--model", "m", *engine_flags(options)])) == options


def test_a_gpu_this_machine_lacks_is_named(model_root, gpus, capsys):
    gpus(1)
    assert cli.ocr_local_server(["gpu", "--gpu_ids", "0,3", "--model_root", str(model_root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: no CUDA device 3: this machine has 1 (ids 0-0)"


@pytest.mark.parametrize("flags,says", [
    (["--use_trt"], "--use_trt needs a GPU"),
    (["--precision", "fp16"], "--precision fp16 is for a GPU"),
])
def test_gpu_settings_with_cpu_are_a_one_line_error(flags, says, model_root):
    out = subprocess.run([sys.executable, str(ROOT / "ocr_local_server.py"), "cpu", *flags,
                          "--model_root", str(model_root), "--port", str(free_port())],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and says in out.stderr, out.stderr
