"""The Paddle predictor config, a pure function of the model folder and the options; the GPU
settings, TensorRT's shape ranges and the device checks, on a machine without a GPU."""

import re
import shutil

import pytest

from pdserving.engine import EngineError, EngineOptions, GpuUnavailable, check_options
from pdserving.engine.model_folder import ModelFolder
from pdserving.engine.paddle_engine import (SELF_ATTENTION_FUSE, TRT_SHAPES, Precision,
                                            config_calls, cpu_has_avx512, predictor_config,
                                            trt_shapes)
from pdserving.pipeline import OcrOptions
from pdserving.services import pipeline_warmup


def test_cpu_defaults(model_root):
    config = predictor_config(ModelFolder.read(model_root / "ocr_det_model"),
                              EngineOptions(engine="paddle").sized())
    assert not config.use_gpu()
    assert config.mkldnn_enabled() and config.ir_optim()
    assert config.cpu_math_library_num_threads() == 1
    assert config.glog_info_disabled()


def test_each_cpu_option_reaches_the_config(model_root):
    options = EngineOptions(engine="paddle", mkldnn=False, ir_optim=False, mem_optim=False,
                            threads=3).sized()
    config = predictor_config(ModelFolder.read(model_root / "ocr_det_model"), options)
    assert not config.mkldnn_enabled() and not config.ir_optim()
    assert config.cpu_math_library_num_threads() == 3
    assert config.prog_file().endswith("inference.pdmodel")
    assert config.params_file().endswith("inference.pdiparams")


# The GPU side, without a GPU: what the Config is told (Paddle's CPU build takes the GPU calls
# and reports none of them; tests/test_gpu_build.py reads them back from the GPU build).
CPU_ONLY = {"disable_gpu", "enable_mkldnn", "disable_mkldnn", "set_mkldnn_cache_capacity",
            "set_cpu_math_library_num_threads", "enable_new_executor"}


def calls(model_root, **options) -> dict[str, tuple]:
    folder = ModelFolder.read(model_root / "ocr_det_model")
    made = config_calls(folder, EngineOptions(engine="paddle", **options).sized())
    assert len({c.name for c in made}) == len(made)  # each said once
    return {c.name: c.args for c in made}


def test_a_gpu_request_sets_its_device_and_pool_and_nothing_for_the_cpu(model_root):
    told = calls(model_root, gpu_ids=(2,), gpu_mem_mb=300)
    assert told["enable_use_gpu"] == (300, 2, Precision.FP32)
    assert not CPU_ONLY & told.keys()
    assert "enable_tensorrt_engine" not in told
    assert told["switch_ir_optim"] == (True,) and "enable_memory_optim" in told


def test_tensorrt_with_fp16_and_the_folders_shape_ranges(model_root):
    told = calls(model_root, gpu_ids=(0,), use_trt=True, precision="fp16")
    assert told["enable_use_gpu"][2] == Precision.FP32  # the half precision is TensorRT's
    assert told["enable_tensorrt_engine"] == (1 << 30, 10, 15, Precision.FP16, False, False)
    assert told["enable_tuned_tensorrt_dynamic_shape"] == \
        (str(model_root / "ocr_det_model" / TRT_SHAPES), True)  # shapes beyond: built at run
    assert not CPU_ONLY & told.keys()


def test_fp16_without_tensorrt_is_paddles_mixed_precision(model_root):
    assert calls(model_root, gpu_ids=(0,), precision="fp16")["enable_use_gpu"][2] == \
        Precision.FP16


def test_every_call_is_one_the_config_has(model_root):
    from paddle.inference import Config, PrecisionType

    for options in ({}, {"mkldnn": False}, {"gpu_ids": (0,), "use_trt": True,
                                            "precision": "fp16"}):
        for name, args in calls(model_root, **options).items():
            assert callable(getattr(Config, name)), name
            for a in args:
                if isinstance(a, Precision):
                    assert getattr(PrecisionType, a.value)


def shape_ranges(path) -> dict[str, dict[str, list[int]]]:
    """Paddle's shape range file (protobuf text): tensor -> {min_shape, max_shape, opt_shape}."""
    ranges = {}
    for block in re.findall(r"shape_range_info \{(.*?)\}", path.read_text(), re.S):
        name = re.search(r'name: "([^"]+)"', block).group(1)
        ranges[name] = {k: [int(v) for v in re.findall(rf"{k}: (-?\d+)", block)]
                        for k in ("min_shape", "max_shape", "opt_shape")}
    return ranges


@pytest.mark.parametrize("name,low,high,usual", [
    ("det", [1, 3, 32, 32], [1, 3, 960, 960], [[1, 3, 640, 640], [1, 3, 960, 960]]),
    ("rec", [1, 3, 48, 320], [6, 3, 48, 3200], [[1, 3, 48, 320], [6, 3, 48, 320]]),
])
def test_tensorrt_shape_ranges_span_what_the_services_send(name, low, high, usual, model_root,
                                                           tmp_path):
    shutil.copytree(model_root / f"ocr_{name}_model", tmp_path / name)
    folder = ModelFolder.read(tmp_path / name)
    path = trt_shapes(folder, pipeline_warmup(name, folder, OcrOptions()),
                      folder.shape_extremes())
    assert path == tmp_path / name / TRT_SHAPES
    ranges = shape_ranges(path)
    assert len(ranges) > 100  # every tensor of the graph, not only the input
    x = ranges[folder.feeds[0].name]
    assert (x["min_shape"], x["max_shape"]) == (low, high)
    assert x["opt_shape"] in usual
    before = path.stat().st_mtime_ns
    assert trt_shapes(folder, []) == path and path.stat().st_mtime_ns == before  # kept


def test_shape_ranges_that_cannot_be_kept_are_a_one_line_error(model_root, tmp_path):
    shutil.copytree(model_root / "ocr_det_model", tmp_path / "det")
    (tmp_path / "det" / TRT_SHAPES / "in-the-way").mkdir(parents=True)  # a folder in its place
    folder = ModelFolder.read(tmp_path / "det")
    with pytest.raises(EngineError, match="cannot keep TensorRT's shape ranges in .*det"):
        trt_shapes(folder, folder.warmup_feeds())
    assert {p.name for p in (tmp_path / "det").iterdir()} == {
        p.name for p in (model_root / "ocr_det_model").iterdir()} | {TRT_SHAPES}  # no leftover


def test_gpu_workers_one_per_gpu_unless_asked():
    two = EngineOptions(engine="paddle", gpu_ids=(0, 1)).sized()
    assert (two.instances, two.threads) == (2, 1)
    four = EngineOptions(engine="paddle", gpu_ids=(0, 1), instances=4).sized()
    assert [four.for_worker(i).gpu_ids for i in range(4)] == [(0,), (1,), (0,), (1,)]
    assert four.for_worker(3).instances == 1
    assert EngineOptions(engine="paddle").for_worker(1).gpu_ids == ()


def test_device_checks_in_the_parent(gpus):
    gpus(0)
    with pytest.raises(GpuUnavailable, match=r"^no CUDA device: .* run with cpu$"):
        check_options(EngineOptions(engine="paddle", gpu_ids=(0,)))
    gpus(1)
    check_options(EngineOptions(engine="paddle", gpu_ids=(0,)))
    with pytest.raises(GpuUnavailable, match=r"^no CUDA device 3: this machine has 1 \(ids 0-0\)"):
        check_options(EngineOptions(engine="paddle", gpu_ids=(0, 3)))


def test_gpu_only_settings_on_the_cpu_are_refused():
    with pytest.raises(EngineError, match="--use_trt needs a GPU"):
        check_options(EngineOptions(engine="paddle", use_trt=True))
    with pytest.raises(EngineError, match="--precision fp16 is for a GPU"):
        check_options(EngineOptions(engine="paddle", precision="fp16"))
    with pytest.raises(EngineError, match="--precision fp16 is for a GPU"):
        check_options(EngineOptions(precision="fp16"))


def test_the_attention_fusion_is_left_out_where_the_cpu_has_no_avx512(model_root):
    # Paddle 2.6 (the GPU build) dies of SIGILL in it on such CPUs (tests/test_gpu_build.py
    # serves on one); with AVX-512 the pass stays, and on a GPU it is not the CPU's concern.
    deleted = calls(model_root).get("delete_pass")
    assert deleted == (None if cpu_has_avx512() else (SELF_ATTENTION_FUSE,))
    assert "delete_pass" not in calls(model_root, gpu_ids=(0,))

