"""Which engine runs which model (``engine.load``): OpenVINO in-process by default, Paddle in
worker processes, and Paddle for whatever OpenVINO cannot read."""

import logging
import os
import subprocess
import sys

import numpy as np
import psutil
import pytest

from pdserving.engine import EngineError, EngineOptions, check_options
from pdserving.engine.load import load_models
from pdserving.engine.model_folder import ModelFolder
from pdserving.engine.openvino_engine import OpenVINOEngine
from pdserving.engine.process_pool import PooledModel


def folders(model_root, *names) -> dict[str, ModelFolder]:
    return {n: ModelFolder.read(model_root / f"ocr_{n}_model") for n in names}


def test_openvino_runs_in_this_process(model_root):
    before = psutil.Process().children()
    loaded = load_models(folders(model_root, "det", "rec"), EngineOptions(instances=2))
    assert loaded.engines == {"det": "openvino", "rec": "openvino"}
    assert all(isinstance(m, OpenVINOEngine) for m in loaded.models.values())
    assert psutil.Process().children() == before  # no worker process
    assert loaded.models["det"](np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
    loaded.close()


def test_paddle_runs_in_worker_processes(model_root):
    loaded = load_models(folders(model_root, "det"), EngineOptions(engine="paddle"))
    try:
        assert loaded.engines == {"det": "paddle"}
        det = loaded.models["det"]
        assert isinstance(det, PooledModel) and det.pool.pids()[0] != os.getpid()
        assert det(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
    finally:
        loaded.close()
    assert not psutil.pid_exists(det.pool.pids()[0]) or \
        psutil.Process(det.pool.pids()[0]).status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("fixture,reason", [("pir_model", "not Paddle 3 PIR"),
                                            ("argmax_model", "Fail to convert arg_max")])
def test_a_model_openvino_cannot_read_runs_on_paddle_with_a_notice(model_root, fixture, reason,
                                                                   request, caplog):
    odd = ModelFolder.read(request.getfixturevalue(fixture))
    with caplog.at_level(logging.WARNING, "pdserving.engine.load"):
        loaded = load_models({"odd": odd, **folders(model_root, "det")}, EngineOptions())
    try:
        assert loaded.engines == {"odd": "paddle", "det": "openvino"}
        [notice] = [r.getMessage() for r in caplog.records]
        assert notice.startswith("notice: model odd (") and reason in notice
        assert notice.endswith("running it on Paddle instead") and "\n" not in notice
        feeds = odd.zeros(2, 4) if fixture == "pir_model" else odd.zeros(2, 48, 192)
        assert loaded.models["odd"].run(feeds)
    finally:
        loaded.close()


def test_impossible_engine_settings_are_refused():
    with pytest.raises(EngineError, match="openvino runs on the CPU only"):
        check_options(EngineOptions(engine="openvino", gpu_ids=(0,)))
    with pytest.raises(EngineError, match="unknown engine 'onnx'"):
        check_options(EngineOptions(engine="onnx"))
    with pytest.raises(EngineError, match="bf16 is an OpenVINO setting"):
        check_options(EngineOptions(engine="paddle", precision="bf16"))
    with pytest.raises(EngineError, match="unknown precision 'int8'"):
        check_options(EngineOptions(precision="int8"))


def test_engine_defaults_fit_the_machine():
    cores = len(os.sched_getaffinity(0))
    ov, paddle = EngineOptions().sized(), EngineOptions(engine="paddle").sized()
    assert (ov.instances, ov.threads) == (1, cores)  # one stream on every core
    assert (paddle.instances, paddle.threads) == (cores, 1)  # a worker process per core
    assert EngineOptions(instances=2, threads=3).sized() == EngineOptions(instances=2, threads=3)
    assert EngineOptions(instances=cores).sized().threads == 1


def test_the_engine_layer_imports_nothing_of_the_rpc_layer():
    # An engine process (a model worker, the fast service) reads model folders and element
    # types (pdserving.dtypes) without grpc and the wire protos.
    code = ("import sys, pdserving.engine.load; print(sorted(m for m in sys.modules if m == "
            "'grpc' or m.startswith(('grpc.', 'pdserving.rpc'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
