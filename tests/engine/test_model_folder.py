"""ModelFolder: the facts every engine and service reads from a model folder, read once."""

import shutil

import numpy as np
import pytest

from pdserving import package
from pdserving.engine.model_folder import (BEST_PATH, SETTINGS_FILE, BadFolder, FolderSettings,
                                         ModelFolder, ModelNotFound)
from pdserving.ops.db import DetSettings
from pdserving.modelconf import SERVER_CONF, build_config, load_config, write_config


def test_bundled_folders(model_root):
    det = ModelFolder.read(model_root / "ocr_det_model")
    rec = ModelFolder.read(model_root / "ocr_rec_model")
    cls = ModelFolder.read(model_root / "ocr_cls_model")
    assert det.model_file.name == "inference.pdmodel" and det.params_file.is_file()
    assert [v.alias for v in det.feeds] == ["image"]  # from the server config: aliases kept
    assert (det.rec_height, rec.rec_height, cls.rec_height) == (None, 48, None)
    assert rec.best_path_classes == 6625 and det.best_path_classes is None
    assert rec.fetches[0].name == BEST_PATH
    assert rec.dictionary.is_file() and len(rec.dictionary.read_text("utf-8").splitlines()) == 6623


def test_warmup_shapes_are_what_the_services_send(model_root):
    det = ModelFolder.read(model_root / "ocr_det_model").warmup_feeds()
    rec = ModelFolder.read(model_root / "ocr_rec_model").warmup_feeds(line_batch=6)
    assert [f["x"].shape for f in det] == [(1, 3, 640, 640), (1, 3, 960, 960)]
    assert [f["x"].shape for f in rec] == [(1, 3, 48, 320), (6, 3, 48, 320)]
    assert all(f["x"].dtype == np.float32 and not f["x"].any() for f in det + rec)


def test_a_32_px_rec_model_is_warmed_at_32_px(model_root, tmp_path):
    """The height comes from the folder's config (a 2020 model is 32 px high), not a default."""
    folder = tmp_path / "ocr_rec_model"
    shutil.copytree(model_root / "ocr_rec_model", folder)
    conf = load_config(folder / SERVER_CONF)
    conf.feed_var[0].shape[:] = [3, 32, -1]
    write_config(conf, folder, SERVER_CONF)
    rec = ModelFolder.read(folder)
    assert rec.rec_height == 32
    assert [f["x"].shape for f in rec.warmup_feeds()] == [(1, 3, 32, 320), (6, 3, 32, 320)]


def test_without_a_config_the_model_file_is_read(tmp_path):
    source = package.source_folder("ocr_det")
    folder = ModelFolder.read(source)
    assert [(v.name, v.alias, v.shape) for v in folder.feeds] == [("x", "x", [3, -1, -1])]
    assert [v.name for v in folder.fetches] == ["sigmoid_0.tmp_0"]


def test_zeros_fill_dynamic_dims_in_order(tmp_path):
    from pdserving.modelconf import Var

    (tmp_path / "inference.pdmodel").write_bytes(b"")
    (tmp_path / "inference.pdiparams").write_bytes(b"")
    write_config(build_config([Var("x", "x", 1, [3, -1, -1]), Var("n", "n", 0, [-1])], []),
                 tmp_path, SERVER_CONF)
    zeros = ModelFolder.read(tmp_path).zeros(2, 64, 128)
    assert zeros["x"].shape == (2, 3, 64, 128) and zeros["n"].shape == (2, 64)
    assert zeros["n"].dtype == np.int64


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelNotFound, match="not a folder"):
        ModelFolder.read(tmp_path / "missing")
    with pytest.raises(ModelNotFound, match="no inference model"):
        ModelFolder.read(tmp_path)


def _settings(folder, resize, post):
    import yaml
    folder.mkdir(exist_ok=True)
    (folder / SETTINGS_FILE).write_text(yaml.safe_dump({
        "PreProcess": {"transform_ops": [{"DetResizeForTest": resize}]},
        "PostProcess": {"name": "DBPostProcess", **post}}))
    return FolderSettings.read(folder)


def test_det_settings_are_read_and_unsaid_ones_are_the_2020_kits(tmp_path):
    det = _settings(tmp_path, {"limit_side_len": 736, "limit_type": "min", "rounding": "nearest"},
                    {"thresh": 0.2, "min_box_side": 3, "use_dilation": False}).det
    assert det == DetSettings(limit_side_len=736, limit_type="min", rounding="nearest",
                              thresh=0.2, min_box_side=3)
    assert _settings(tmp_path, {}, {}).det == DetSettings()


@pytest.mark.parametrize("resize, error", [
    ({"limit_type": "resize_long"}, "limit_type 'resize_long' is not max or min"),
    ({"rounding": "up"}, "rounding 'up' is not down or nearest"),
])
def test_bad_det_settings_are_one_line_errors(tmp_path, resize, error):
    with pytest.raises(BadFolder, match=f"unreadable settings \\({error}\\)$"):
        _settings(tmp_path, resize, {})


def test_a_settings_file_that_is_not_yaml_is_a_one_line_error(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text("Global: [unclosed\n")
    with pytest.raises(BadFolder, match=r"inference\.yml: unreadable settings \(") as e:
        FolderSettings.read(tmp_path)
    assert "\n" not in str(e.value)
