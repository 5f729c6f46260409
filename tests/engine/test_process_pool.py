"""Model worker processes: results, concurrency, big outputs, crashes and start-up failures."""

import os
import signal
import threading

import numpy as np
import pytest

from pdserving import package
from pdserving.engine import GpuUnavailable
from pdserving.engine import EngineOptions
from pdserving.engine.model_folder import ModelNotFound
from pdserving.engine.paddle_engine import PaddleEngine
from pdserving.engine.process_pool import INITIAL_REGION, WorkerError, WorkerPool


@pytest.fixture(scope="module")
def pool(model_root):
    pool = WorkerPool({"det": model_root / "ocr_det_model", "rec": model_root / "ocr_rec_model"},
                      EngineOptions(), workers=2,
                      warmup={"rec": [{"x": np.zeros((1, 3, 48, 320), np.float32)}]})
    yield pool
    pool.close()


def test_results_match_an_in_process_predictor(pool, model_root):
    x = np.random.default_rng(1).random((1, 3, 96, 160), dtype=np.float32)
    local = PaddleEngine(model_root / "ocr_det_model")(x)
    np.testing.assert_allclose(pool.models["det"](x), local, atol=1e-5)
    assert pool.models["rec"].output_names == [package.BEST_PATH, "softmax_11.tmp_0"]


def test_concurrent_calls_are_spread_over_the_workers(pool):
    import psutil

    workers = [psutil.Process(pid) for pid in pool.pids()]
    before = [sum(w.cpu_times()[:2]) for w in workers]
    x = np.zeros((1, 3, 640, 640), np.float32)
    threads = [threading.Thread(target=pool.models["det"], args=(x,)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    used = [sum(w.cpu_times()[:2]) - b for w, b in zip(workers, before)]
    assert min(used) > 0.2 * max(used), used


def test_output_larger_than_the_shared_region_comes_back_whole(pool):
    x = np.random.default_rng(2).random((4, 3, 48, 2560), dtype=np.float32)
    def softmax():
        return pool.models["rec"].run({"x": x}, ["softmax_11.tmp_0"])["softmax_11.tmp_0"]

    first = softmax()  # (4, 320, 6625) float32 = 34 MB > the initial region: through the pipe
    assert first.nbytes > INITIAL_REGION
    second = softmax()  # the region has grown: through shared memory
    np.testing.assert_array_equal(first, second)


def test_a_killed_worker_fails_one_call_then_is_replaced(model_root):
    pool = WorkerPool({"det": model_root / "ocr_det_model"}, EngineOptions(), workers=1)
    try:
        x = np.zeros((1, 3, 64, 64), np.float32)
        pool.models["det"](x)
        os.kill(pool.pids()[0], signal.SIGKILL)
        with pytest.raises(WorkerError, match="died"):
            pool.models["det"](x)
        assert pool.models["det"](x).shape == (1, 1, 64, 64)
    finally:
        pool.close()


def test_a_bad_input_is_an_error_and_the_worker_goes_on(pool):
    with pytest.raises(WorkerError, match="failed"):
        pool.models["det"](np.zeros((1, 5, 64, 64), np.float32))  # 5 channels
    assert pool.models["det"](np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)


def test_a_folder_that_is_not_a_model_fails_at_start(tmp_path):
    with pytest.raises(ModelNotFound, match="no inference model"):
        WorkerPool({"det": tmp_path}, EngineOptions(), workers=1)


def test_gpu_on_a_cpu_build_fails_at_once(model_root):
    with pytest.raises(GpuUnavailable, match="requirements-gpu.txt"):
        WorkerPool({"det": model_root / "ocr_det_model"}, EngineOptions(engine="paddle",
                                                                        gpu_ids=(0,)), workers=1)
