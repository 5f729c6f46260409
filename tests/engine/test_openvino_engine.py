"""The OpenVINO engine on the real models: the same answers as Paddle, in one process."""

import os
import re
import threading

import cv2
import numpy as np
import pytest

from pdserving.engine import EngineOptions
from pdserving.engine.model_folder import BEST_PATH, ModelFolder
from pdserving.engine.openvino_engine import ModelUnreadable, OpenVINOEngine
from pdserving.engine.paddle_engine import PaddleEngine
from pdserving.errors import BadRequest
from pdserving.ops import crop, ctc, db
from pdserving.ops.resize import cls_resize_normalize, det_normalize, det_resize, rec_batches
from tests.helpers.paths import SAMPLES

PADDLE = EngineOptions(engine="paddle")


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return cv2.imread(str(SAMPLES / "doc_english.png"))


@pytest.fixture(scope="module")
def lines(page, model_root) -> list[np.ndarray]:
    """The page's text lines as the pipeline crops them."""
    resized, (rh, rw) = det_resize(page)
    prob = PaddleEngine(model_root / "ocr_det_model", PADDLE)(det_normalize(resized)[None])
    boxes = db.sort_boxes(db.filter_boxes(db.db_postprocess(prob[0, 0], rh, rw, page.shape[:2]),
                                          page.shape[:2]))
    return [crop.rotate_crop(page, b) for b in boxes]


@pytest.fixture(scope="module")
def rec_folder(model_root) -> ModelFolder:
    return ModelFolder.read(model_root / "ocr_rec_model")


@pytest.fixture(scope="module")
def rec(rec_folder) -> OpenVINOEngine:
    return OpenVINOEngine(rec_folder, EngineOptions(instances=2))


def test_det_probability_map_matches_paddle(model_root, page):
    resized, _ = det_resize(page)
    x = det_normalize(resized)[None]
    ov = OpenVINOEngine(model_root / "ocr_det_model")(x)
    paddle = PaddleEngine(model_root / "ocr_det_model", PADDLE)(x)
    assert ov.shape == paddle.shape and ov.dtype == np.float32
    np.testing.assert_allclose(ov, paddle, atol=2e-4)


def test_rec_best_path_is_its_own_softmax_best_class_and_probability(rec, lines):
    [(_, batch)] = rec_batches(lines[:2], height=48, batch_size=6, min_width=320,
                               max_total_width=3200)
    out = rec.run({"x": batch})
    assert list(out) == [BEST_PATH, "softmax_11.tmp_0"]
    np.testing.assert_array_equal(out[BEST_PATH], ctc.best_path(out["softmax_11.tmp_0"]))


def test_rec_reads_every_line_as_paddle_does(rec, rec_folder, lines):
    charset = ctc.load_dictionary(rec_folder.dictionary)
    paddle = PaddleEngine(rec_folder, PADDLE)
    for indices, batch in rec_batches(lines, height=48, batch_size=6, min_width=320,
                                      max_total_width=3200):
        ov_text = ctc.decode_best_path(rec(batch), rec_folder.best_path_classes, charset)
        pd_text = ctc.decode_best_path(paddle(batch), rec_folder.best_path_classes, charset)
        assert [t for t, _ in ov_text] == [t for t, _ in pd_text]
        np.testing.assert_allclose([s for _, s in ov_text], [s for _, s in pd_text], atol=1e-3)
    assert any(t for t, _ in ov_text)


def test_bf16_reads_the_same_lines(rec_folder, rec, lines):
    """bf16 (faster where the CPU has BF16 units) changes scores a little, not the text."""
    charset = ctc.load_dictionary(rec_folder.dictionary)
    bf16 = OpenVINOEngine(rec_folder, EngineOptions(precision="bf16"))
    for _, batch in rec_batches(lines, height=48, batch_size=6, min_width=320,
                                max_total_width=3200):
        texts = [ctc.decode_best_path(m(batch), rec_folder.best_path_classes, charset)
                 for m in (bf16, rec)]
        assert [t for t, _ in texts[0]] == [t for t, _ in texts[1]]


def test_cls_gives_paddle_labels(model_root, lines):
    batch = np.stack([cls_resize_normalize(c) for c in lines + [cv2.rotate(lines[0],
                                                                           cv2.ROTATE_180)]])
    ov = OpenVINOEngine(model_root / "ocr_cls_model")(batch)
    paddle = PaddleEngine(model_root / "ocr_cls_model", PADDLE)(batch)
    np.testing.assert_array_equal(ov.argmax(1), paddle.argmax(1))
    assert ov[-1].argmax() == 1  # the upside-down line is seen as such


def test_concurrent_calls_from_many_threads_each_get_their_own_answer(rec, lines):
    batches = [b for _, b in rec_batches(lines, height=48, batch_size=2, min_width=320,
                                         max_total_width=3200)][:4]
    expected = [rec(b) for b in batches]
    got: dict[int, list] = {}

    def work(i: int) -> None:
        got[i] = [rec(batches[(i + k) % len(batches)]) for k in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i, outs in got.items():
        for k, out in enumerate(outs):
            np.testing.assert_array_equal(out, expected[(i + k) % len(batches)])


def test_a_bad_input_raises_and_the_engine_goes_on(model_root):
    det = OpenVINOEngine(model_root / "ocr_det_model")
    expects = r"shape \[1, 5, 64, 64\], the model expects \[\?, 3, \?, \?\]"
    with pytest.raises(ValueError, match=expects):
        det(np.zeros((1, 5, 64, 64), np.float32))  # 5 channels
    with pytest.raises(ValueError, match="shape"):
        det(np.zeros((3, 64, 64), np.float32))  # no batch dim
    with pytest.raises(ValueError, match="the model takes"):
        det.run({"image": np.zeros((1, 3, 64, 64), np.float32)})
    assert det(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)


@pytest.mark.parametrize("shape", [(1, 3, 0, 32), (1, 3, 5, 7)])
def test_inputs_the_layers_cannot_take_are_the_callers_fault(model_root, shape):
    """A side of 0 (found by tests/rpc/test_fuzz.py: a 500 from the CPU plugin's convolution)
    or sides the layers cannot combine: a BadRequest naming the shape, and the engine goes on."""
    det = OpenVINOEngine(model_root / "ocr_det_model")
    with pytest.raises(BadRequest, match=re.escape(f"inputs of shape {{'x': {list(shape)}}}")):
        det(np.zeros(shape, np.float32))
    assert det(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 1, 32, 32)


def test_warmup_runs_on_every_stream(model_root):
    calls = []

    class Feeds(dict):
        def items(self):  # OpenVINO reads the feeds once per infer request
            calls.append(1)
            return super().items()

    OpenVINOEngine(model_root / "ocr_det_model", EngineOptions(instances=2),
                   warmup=[Feeds(x=np.zeros((1, 3, 64, 64), np.float32))])
    assert len(calls) == 2


def test_models_openvino_cannot_read_are_refused_in_one_line(pir_model, argmax_model):
    with pytest.raises(ModelUnreadable, match="not Paddle 3 PIR") as pir:
        OpenVINOEngine(pir_model)
    with pytest.raises(ModelUnreadable, match="Fail to convert arg_max") as argmax:
        OpenVINOEngine(argmax_model)
    for e in (pir.value, argmax.value):
        assert "\n" not in str(e)


def test_openvino_sends_no_telemetry(tmp_path, model_root):
    """Imported by the engine, openvino uses its no-op telemetry stub: no usage event to Google
    Analytics (which openvino_telemetry sends on import when ~/intel holds no opt-out), no
    client id written to the user's home, and no socket but to 127.0.0.1."""
    import subprocess
    import sys

    code = ("import socket\n"
            "def connect(self, address, _connect=socket.socket.connect):\n"
            "    if self.family in (socket.AF_INET, socket.AF_INET6):\n"
            "        raise SystemExit(f'connect to {address}')\n"
            "    return _connect(self, address)\n"
            "socket.socket.connect = connect\n"
            "from pdserving.engine import EngineOptions\n"
            "from pdserving.engine.openvino_engine import OpenVINOEngine\n"
            f"OpenVINOEngine({str(model_root / 'ocr_det_model')!r}, EngineOptions())\n"
            "import openvino.tools.ovc.telemetry_utils as t\n"
            "print(t.tm.__name__)\n")
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("CI", None)  # openvino_telemetry stays quiet on CI: this test must not rely on it
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "openvino.tools.ovc.telemetry_stub"
    assert not (tmp_path / "intel").exists()
