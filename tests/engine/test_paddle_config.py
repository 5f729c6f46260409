"""The Paddle predictor config, a pure function of the model folder and the options."""

from pdserving.engine import EngineOptions
from pdserving.engine.model_folder import ModelFolder
from pdserving.engine.paddle_engine import predictor_config


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
