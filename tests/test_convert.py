"""Conversion of real Paddle inference models (legacy ProgramDesc, PIR json) to serving folders."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pdserving import convert, package
from pdserving.engine import EngineOptions
from pdserving.engine.model_folder import ModelNotFound
from pdserving.engine.paddle_engine import PaddleEngine
from pdserving.modelconf import CLIENT_CONF, SERVER_CONF, feed_vars, fetch_vars, load_config
from tests.helpers.paths import ROOT


def det_source() -> Path:
    return package.source_folder("ocr_det")


def test_legacy_model_converts_with_names_read_from_the_model(tmp_path):
    feeds, fetches = convert.inference_model_to_serving(
        det_source(), tmp_path / "server", tmp_path / "client")
    assert (feeds, fetches) == (["x"], ["sigmoid_0.tmp_0"])
    assert {p.name for p in (tmp_path / "server").iterdir()} == {
        "inference.pdmodel", "inference.pdiparams", SERVER_CONF,
        "serving_server_conf.stream.prototxt"}
    conf = load_config(tmp_path / "server")
    assert [(v.name, v.alias, v.type_code, v.shape, v.is_lod) for v in feed_vars(conf)] == [
        ("x", "x", 1, [3, -1, -1], False)]
    assert [(v.name, v.alias, v.type_code, v.shape) for v in fetch_vars(conf)] == [
        ("sigmoid_0.tmp_0", "sigmoid_0.tmp_0", 1, [1, -1, -1])]
    assert load_config(tmp_path / "client" / CLIENT_CONF) == conf


def test_converted_model_loads_and_runs_in_paddle_engine(tmp_path):
    convert.inference_model_to_serving(det_source(), tmp_path / "s", tmp_path / "c")
    conf = load_config(tmp_path / "s")
    engine = PaddleEngine(tmp_path / "s", EngineOptions(mkldnn=False))
    assert engine.input_names == [v.name for v in conf.feed_var]
    assert engine.output_names == [v.name for v in conf.fetch_var]
    out = engine(np.zeros((1, 3, 64, 96), np.float32))
    assert out.shape == (1, 1, 64, 96)


def test_pir_json_model_converts_and_runs(pir_model, tmp_path):
    feeds, fetches = convert.inference_model_to_serving(pir_model, tmp_path / "s", tmp_path / "c")
    assert feeds == ["x", "ids"]
    conf = load_config(tmp_path / "c")
    assert [(v.name, v.type_code, v.shape) for v in feed_vars(conf)] == [
        ("x", 1, [4]), ("ids", 0, [2, 5])]
    assert [(v.type_code, v.shape) for v in fetch_vars(conf)] == [(1, [3]), (3, [2, 5])]
    assert (tmp_path / "s" / "inference.json").is_file()
    # Paddle 3.3.1 cannot build a predictor for a PIR program with memory optimisation on.
    engine = PaddleEngine(tmp_path / "s", EngineOptions(mkldnn=False, mem_optim=False))
    assert engine.output_names == fetches
    out = engine.run({"x": np.ones((2, 4), np.float32), "ids": np.ones((2, 2, 5), np.int64)})
    assert out[fetches[0]].shape == (2, 3) and out[fetches[1]].dtype == np.float64


def test_explicit_file_names_and_aliases(tmp_path):
    src = tmp_path / "renamed"
    src.mkdir()
    shutil.copy(det_source() / "inference.pdmodel", src / "det.pdmodel")
    shutil.copy(det_source() / "inference.pdiparams", src / "det.weights")
    convert.inference_model_to_serving(src, tmp_path / "s", tmp_path / "c", "det.pdmodel",
                                       "det.weights", feed_alias_names="image",
                                       fetch_alias_names=["prob"])
    conf = load_config(tmp_path / "s")
    assert (conf.feed_var[0].alias_name, conf.fetch_var[0].alias_name) == ("image", "prob")
    assert (tmp_path / "s" / "inference.pdiparams").is_file()
    with pytest.raises(ValueError, match="2 feed alias names for 1"):
        convert.inference_model_to_serving(src, tmp_path / "s", tmp_path / "c", "det.pdmodel",
                                           "det.weights", feed_alias_names="a,b")


@pytest.mark.parametrize("files, names", [
    (("model", "params"), ("model", "params")),   # the 2020 README's call
    (("model", "params"), (None, None)),          # found without names
    (("__model__", "__params__"), ("__model__", None)),
    (("__model__", "params"), ("__model__", "params")),
], ids=["model+params", "model+params found", "__model__ found params", "__model__+params"])
def test_2020_file_names(tmp_path, files, names):
    """PaddleOCR's 2020 inference folders held ``model`` + ``params`` (or ``__model__``); given
    by name, or found, they convert into a server folder under the engine's names."""
    src = tmp_path / "ch_rec_r34_vd_crnn"
    src.mkdir()
    shutil.copy(det_source() / "inference.pdmodel", src / files[0])
    shutil.copy(det_source() / "inference.pdiparams", src / files[1])
    feeds, fetches = convert.inference_model_to_serving(src, tmp_path / "s", tmp_path / "c",
                                                        *names)
    assert (feeds, fetches) == (["x"], ["sigmoid_0.tmp_0"])
    assert (tmp_path / "s" / "inference.pdmodel").read_bytes() == (src / files[0]).read_bytes()
    assert (tmp_path / "s" / "inference.pdiparams").is_file()


def test_a_model_file_without_its_params_file_is_named(tmp_path):
    shutil.copy(det_source() / "inference.pdmodel", tmp_path / "__model__")
    with pytest.raises(ModelNotFound, match=r"looked for __model__\+a params file\)"):
        convert.inference_model_to_serving(tmp_path, tmp_path / "s", tmp_path / "c",
                                           model_filename="__model__")


def test_alias_names_are_keyword_only(tmp_path):
    """Paddle Serving's sixth positional argument was ``encryption``: not taken for an alias."""
    with pytest.raises(TypeError):
        convert.inference_model_to_serving(det_source(), tmp_path / "s", tmp_path / "c", None,
                                           None, "image")


def test_garbage_model_file_is_not_a_model(tmp_path):
    (tmp_path / "inference.pdmodel").write_bytes(b"\x00junk")
    (tmp_path / "inference.pdiparams").write_bytes(b"")
    with pytest.raises(ModelNotFound, match="not a readable Paddle inference model"):
        convert.inference_model_to_serving(tmp_path, tmp_path / "s", tmp_path / "c")
    (tmp_path / "inference.pdmodel").unlink()
    (tmp_path / "inference.json").write_text('{"program": {}}')
    with pytest.raises(ModelNotFound):
        convert.read_model_io(tmp_path / "inference.json")


def test_cli_converts(tmp_path, capsys):
    assert convert.main(["--dirname", str(det_source()), "--serving_server", str(tmp_path / "s"),
                         "--serving_client", str(tmp_path / "c")]) == 0
    assert "sigmoid_0.tmp_0" in capsys.readouterr().out
    assert (tmp_path / "c" / "serving_client_conf.stream.prototxt").is_file()


def test_cli_not_a_model_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "convert_model.py"), "--dirname", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "no inference model" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "serving_server").exists()
