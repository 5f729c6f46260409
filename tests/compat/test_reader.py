"""The 2020 reader API (``pdserving.compat.reader``) on the real models and the sample images.

The det and rec flows are written as PaddleOCR's 2020 serving scripts wrote them; they must give
the kit's own pipeline's boxes and read every sample as labelled.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pdserving import package
from pdserving.compat import reader as compat
from pdserving.compat.reader import (DBPostProcess, Div, File2Image, FilterBoxes,
                                     GetRotateCropImage, Normalize, OCRReader, ResizeByFactor,
                                     Sequential, SortedBoxes, Transpose, URL2Image)
from pdserving.engine.model_folder import ModelFolder
from pdserving.engine.openvino_engine import OpenVINOEngine
from pdserving.errors import BadRequest
from pdserving.modelconf import SERVER_CONF
from pdserving.ops import resize
from pdserving.pipeline import DetStep, OcrPipeline
from tests.helpers.paths import SAMPLES

LABELS = json.loads((SAMPLES / "labels.json").read_text(encoding="utf-8"))
BUNDLED_DICT = package.bundled_dictionary()
DB_PARAMS = {"thresh": 0.3, "box_thresh": 0.5, "max_candidates": 1000, "unclip_ratio": 1.5,
             "min_size": 3}


def det_preprocess() -> Sequential:
    return Sequential([ResizeByFactor(32, 960), Div(255),
                       Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                       Transpose((2, 0, 1))])


def read(name: str) -> np.ndarray:
    return cv2.imread(str(SAMPLES / name), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def det(model_root) -> OpenVINOEngine:
    return OpenVINOEngine(ModelFolder.read(model_root / "ocr_det_model"))


@pytest.fixture(scope="module")
def rec(model_root) -> OpenVINOEngine:
    return OpenVINOEngine(ModelFolder.read(model_root / "ocr_rec_model"))


@pytest.fixture(scope="module")
def ocr_reader(model_root) -> OCRReader:
    return OCRReader(model_dir=model_root / "ocr_rec_model")


def det_2020(im: np.ndarray, det) -> np.ndarray:
    """The 2020 det script: preprocess, the model, DB post-process, filter, sort."""
    ori_h, ori_w = im.shape[:2]
    det_img = det_preprocess()(im)
    _, new_h, new_w = det_img.shape
    ratio_list = [float(new_h) / ori_h, float(new_w) / ori_w]
    dt_boxes_list = DBPostProcess(DB_PARAMS)(det(det_img[np.newaxis]), [ratio_list])
    dt_boxes = FilterBoxes(10, 10)(dt_boxes_list[0], [ori_h, ori_w])
    return SortedBoxes()(dt_boxes)


def rec_fetch_map(im: np.ndarray, boxes: np.ndarray, rec, ocr_reader: OCRReader
                  ) -> dict[str, np.ndarray]:
    """The 2020 rec script: every crop in one batch as wide as the widest; the outputs under
    the names the 2020 rec model gave them."""
    crops = [GetRotateCropImage()(im, box) for box in boxes]
    max_wh_ratio = max(c.shape[1] / c.shape[0] for c in crops)
    batch = np.stack([ocr_reader.resize_norm_img(c, max_wh_ratio) for c in crops])
    out = rec.run({"x": batch})
    return {"ctc_greedy_decoder_0.tmp_0": out["ctc_best_path_0.tmp_0"],
            "softmax_0.tmp_0": out["softmax_11.tmp_0"]}


@pytest.fixture(scope="module")
def english_outputs(det, rec, ocr_reader) -> dict[str, np.ndarray]:
    im = read("doc_english.png")
    return rec_fetch_map(im, det_2020(im, det), rec, ocr_reader)


@pytest.mark.parametrize("shape", [(626, 1600), (480, 640), (50, 50), (1080, 1920)])
def test_det_preprocess_is_the_kits_resize_and_normalise(shape):
    im = cv2.resize(read("doc_english.png"), shape[::-1])
    got = det_preprocess()(im)
    want = resize.det_normalize(resize.det_resize(im)[0])
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.allclose(got, want, atol=1e-5)


def test_resize_by_factor_defaults_to_the_originals_2400_side():
    im = np.zeros((1080, 1920, 3), np.uint8)
    assert ResizeByFactor()(im).shape == (1024, 1920, 3)      # under 2400: only rounded
    assert ResizeByFactor(32, 960)(im).shape == (480, 960, 3)  # the scripts' limit


def test_normalize_channel_first_on_chw():
    chw = Div(255)(read("sign_exit.jpg")).transpose(2, 0, 1)
    got = Normalize([0.5, 0.25, 0.125], [0.5, 0.5, 2.0], channel_first=True)(chw)
    assert got.dtype == np.float32
    for c, (m, s) in enumerate([(0.5, 0.5), (0.25, 0.5), (0.125, 2.0)]):
        assert np.allclose(got[c], (chw[c] - m) / s, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LABELS))
def test_2020_flow_gives_the_detectors_boxes_and_reads_the_labels(name, det, rec, ocr_reader):
    im = read(name)
    boxes = det_2020(im, det)
    np.testing.assert_array_equal(boxes, OcrPipeline(DetStep(det), None).detect(im))
    rec_res = ocr_reader.postprocess(rec_fetch_map(im, boxes, rec, ocr_reader), with_score=True)
    assert [text for text, _ in rec_res] == LABELS[name]
    assert all(type(score) is float and 0.5 < score <= 1.0 for _, score in rec_res)


def test_db_postprocess_uses_each_images_own_ratios(det):
    """Two pages of different sizes squeezed to one det input size, run as one batch."""
    pages = [read("receipt.png"), read("doc_english.png")]
    side = 640
    batch = np.stack([resize.det_normalize(cv2.resize(p, (side, side))) for p in pages])
    ratios = [[side / p.shape[0], side / p.shape[1]] for p in pages]
    pred = det(batch)
    both = DBPostProcess(DB_PARAMS)(pred, ratios)
    assert len(both) == 2
    for i, p in enumerate(pages):
        alone = DBPostProcess(DB_PARAMS)(pred[i:i + 1], ratios[i:i + 1])[0]
        np.testing.assert_array_equal(both[i], alone)
        assert both[i].dtype == np.float32 and both[i].shape[1:] == (4, 2) and len(both[i]) > 3
        # clipped to this page's own size, which is recovered from the map and its ratios
        assert both[i][..., 0].max() <= p.shape[1] and both[i][..., 1].max() <= p.shape[0]
    assert both[0][..., 1].max() > pages[1].shape[0]  # the receipt is taller than the doc


def test_db_postprocess_params():
    assert DBPostProcess().params == DB_PARAMS
    assert DBPostProcess({"box_thresh": 0.6}).params["box_thresh"] == 0.6
    with pytest.raises(ValueError, match="unknown parameters.*'use_dilation'"):
        DBPostProcess({"use_dilation": True})


def test_postprocess_from_the_probabilities_alone(english_outputs, ocr_reader):
    by_best_path = ocr_reader.postprocess(english_outputs, with_score=True)
    by_probs = ocr_reader.postprocess({"softmax_11.tmp_0": english_outputs["softmax_0.tmp_0"]},
                                      with_score=True)
    assert [t for t, _ in by_probs] == [t for t, _ in by_best_path] == LABELS["doc_english.png"]
    np.testing.assert_allclose([s for _, s in by_probs], [s for _, s in by_best_path], atol=1e-6)


def test_postprocess_real_names_lists_and_without_score(english_outputs, ocr_reader, tmp_path,
                                                        monkeypatch):
    want = ocr_reader.postprocess(english_outputs, with_score=True)
    best = english_outputs["ctc_greedy_decoder_0.tmp_0"]
    real = {"ctc_best_path_0.tmp_0": best, "softmax_11.tmp_0": english_outputs["softmax_0.tmp_0"]}
    assert ocr_reader.postprocess(real, with_score=True) == want
    as_lists = {k: v.tolist() for k, v in english_outputs.items()}
    assert ocr_reader.postprocess(as_lists, with_score=True) == want
    assert ocr_reader.postprocess(english_outputs) == [(t,) for t, _ in want]
    # The best path alone: the class count comes from the model folder, or else from the
    # dictionary (PaddleOCR >= 2.0 models: blank + dictionary + space).
    assert ocr_reader.postprocess({"ctc_best_path_0.tmp_0": best}, with_score=True) == want
    monkeypatch.chdir(tmp_path)
    assert OCRReader().postprocess({"ctc_greedy_decoder_0.tmp_0": best}, True) == want


def test_postprocess_empty_and_unknown_maps(ocr_reader):
    assert ocr_reader.postprocess({}) == []
    with pytest.raises(ValueError, match="ctc_greedy_decoder_0.tmp_0.*softmax_11.tmp_0"):
        ocr_reader.postprocess({"save_infer_model/scale_0.tmp_1": np.zeros((1, 5, 6625))})


def test_ocr_reader_height_and_dictionary_choices(model_root, tmp_path, monkeypatch):
    folder_dict = model_root / "ocr_rec_model" / "ppocr_keys_v1.txt"
    line = read("sign_exit.jpg")[100:148, 100:400]  # 48 x 300
    assert OCRReader(image_shape=[3, 32, 320]).height == 32
    assert OCRReader(image_shape=[3, 32, 320]).resize_norm_img(line, 6.25).shape == (3, 32, 200)

    monkeypatch.chdir(model_root)  # beside the model folders, as the scripts run
    beside = OCRReader()
    assert beside.height == 48 and beside.char_dict_path.resolve() == folder_dict.resolve()
    np.testing.assert_array_equal(beside.resize_norm_img(line, 6.25),
                                  resize.rec_resize_normalize(line, 48, 300))

    monkeypatch.chdir(tmp_path)  # nothing here: the bundled model's height and dictionary
    bare = OCRReader()
    assert bare.height == compat.DEFAULT_REC_HEIGHT == 48
    assert bare.char_dict_path == BUNDLED_DICT and len(bare.charset) == 6623

    # A folder of a 32-px model without a dictionary: its height, the bundled dictionary.
    small = tmp_path / "ocr_rec_model"
    small.mkdir()
    source = model_root / "ocr_rec_model"
    for name in ("inference.pdmodel", "inference.pdiparams"):
        (small / name).symlink_to(source / name)
    conf = (source / SERVER_CONF).read_text()
    (small / SERVER_CONF).write_text(conf.replace("shape: 48", "shape: 32", 1))
    reader = OCRReader()
    assert reader.height == 32 and reader.char_dict_path == BUNDLED_DICT

    custom = tmp_path / "keys.txt"
    custom.write_text("a\nb\n \n", encoding="utf-8")
    assert OCRReader(char_dict_path=custom).charset == ["a", "b", " "]


def test_url2image_and_file2image(tmp_path):
    path = SAMPLES / "menu.jpg"
    want = cv2.imread(str(path), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(File2Image()(path), want)
    np.testing.assert_array_equal(File2Image()(str(path)), want)
    np.testing.assert_array_equal(URL2Image()(path.as_uri()), want)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    assert File2Image()(junk) is None and URL2Image()(junk.as_uri()) is None


BOX = np.array([[10, 10], [60, 10], [60, 30], [10, 30]], np.float32)
IMAGE_OPS = {
    "ResizeByFactor": lambda r, x: ResizeByFactor(32, 960)(x),
    "Div": lambda r, x: Div(255)(x),
    "Normalize": lambda r, x: Normalize([0.5] * 3, [0.5] * 3)(x),
    "Transpose": lambda r, x: Transpose((2, 0, 1))(x),
    "GetRotateCropImage": lambda r, x: GetRotateCropImage()(x, BOX),
    "OCRReader.resize_norm_img": lambda r, x: r.resize_norm_img(x, 4.0),
}


@pytest.mark.parametrize("bad, got", [
    (None, "got None"),
    (b"\xff\xd8 bytes", "got a bytes"),
    (np.zeros((8, 8), np.uint8), "got an array of shape (8, 8)"),
])
@pytest.mark.parametrize("op", sorted(IMAGE_OPS))
def test_image_ops_refuse_what_is_not_an_image(op, bad, got, ocr_reader):
    with pytest.raises(BadRequest) as e:
        IMAGE_OPS[op](ocr_reader, bad)
    assert e.value.message.startswith(f"{op}: expected an image") and got in e.value.message
    assert e.value.status == 400 and "\n" not in e.value.message


def test_ops_on_image_layout_refuse_other_channel_counts(ocr_reader):
    four = np.zeros((32, 64, 4), np.uint8)
    for op in ("ResizeByFactor", "GetRotateCropImage", "OCRReader.resize_norm_img"):
        with pytest.raises(BadRequest, match=r"H x W x 3 array\), got an array of shape "
                                             r"\(32, 64, 4\)"):
            IMAGE_OPS[op](ocr_reader, four)
    with pytest.raises(BadRequest, match=r"ResizeByFactor: .*shape \(0, 0, 3\)"):
        ResizeByFactor()(np.zeros((0, 0, 3), np.uint8))


def test_a_bad_upload_stops_at_the_first_step_of_the_script():
    """cv2.imdecode's None for bad bytes reaches the det preprocess: a 400, naming the op."""
    im = cv2.imdecode(np.frombuffer(b"<html>not a picture</html>", np.uint8), cv2.IMREAD_COLOR)
    with pytest.raises(BadRequest, match="^ResizeByFactor: expected an image .*got None$"):
        det_preprocess()(im)


def test_all_names_are_exported():
    assert sorted(compat.__all__) == sorted([
        "Sequential", "URL2Image", "File2Image", "ResizeByFactor", "Div", "Normalize",
        "Transpose", "DBPostProcess", "FilterBoxes", "GetRotateCropImage", "SortedBoxes",
        "OCRReader"])
    assert all(callable(getattr(compat, n)) for n in compat.__all__)
