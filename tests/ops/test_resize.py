import math

import numpy as np
import pytest

from pdserving.ops.resize import (cls_resize_normalize, det_normalize, det_resize,
                                  rec_batches, rec_resize_normalize)


@pytest.mark.parametrize("src, dst", [
    ((600, 1000), (576, 960)),
    ((480, 640), (480, 640)),
    ((500, 700), (448, 640)),
    ((50, 50), (32, 32)),
    ((1080, 1920), (480, 960)),
    ((1920, 1080), (960, 480)),
])
def test_det_resize_by_factor(src, dst):
    img = np.zeros(src + (3,), dtype=np.uint8)
    resized, (ratio_h, ratio_w) = det_resize(img)
    assert resized.shape == dst + (3,)
    assert ratio_h == pytest.approx(dst[0] / src[0])
    assert ratio_w == pytest.approx(dst[1] / src[1])


@pytest.mark.parametrize("src, rounding, dst", [
    ((320, 240), "nearest", (992, 736)),    # PaddleOCR 3: short side up to 736, 981 -> 992
    ((320, 240), "down", (928, 736)),       # the 2020 rounding: 981 -> 928
    ((4000, 1000), "nearest", (4000, 992)),  # short side past the limit: only rounded
    ((3000, 100), "nearest", (4000, 128)),  # 22080 px long: capped at max_side, 133 -> 128
    ((3000, 100), "down", (4000, 96)),
])
def test_det_resize_min_rule_raises_the_short_side(src, rounding, dst):
    img = np.zeros(src + (3,), dtype=np.uint8)
    resized, (ratio_h, ratio_w) = det_resize(img, 736, limit_type="min", max_side=4000,
                                             rounding=rounding)
    assert resized.shape == dst + (3,)
    assert (ratio_h, ratio_w) == pytest.approx((dst[0] / src[0], dst[1] / src[1]))


def test_det_normalize_keeps_bgr_order():
    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[..., 0] = 255                       # blue channel full
    x = det_normalize(img)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    assert x[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229)   # channel 0 uses the first mean
    assert x[1, 0, 0] == pytest.approx(-0.456 / 0.224)
    assert x[2, 0, 0] == pytest.approx(-0.406 / 0.225)


def test_det_normalize_is_bit_identical_to_the_whole_array_formula():
    """Written channel by channel in place, it must give the det model exactly the floats of
    the reference ``(x / 255 - mean) / std`` (else boxes could move)."""
    img = np.random.default_rng(7).integers(0, 256, (61, 83, 3), dtype=np.uint8)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    reference = ((img.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
    x = det_normalize(img)
    assert x.flags.c_contiguous
    np.testing.assert_array_equal(x, reference)


def test_rec_resize_normalize_scales_and_pads():
    img = np.full((20, 50, 3), 255, dtype=np.uint8)
    x = rec_resize_normalize(img, 48, 320)
    resized_w = math.ceil(48 * 50 / 20)     # 120
    assert x.shape == (3, 48, 320) and x.dtype == np.float32
    assert np.all(x[:, :, :resized_w] == 1.0)
    assert np.all(x[:, :, resized_w:] == 0.0)


def test_rec_resize_normalize_caps_width():
    img = np.zeros((10, 400, 3), dtype=np.uint8)
    x = rec_resize_normalize(img, 48, 320)
    assert x.shape == (3, 48, 320)
    assert np.all(x == -1.0)


def test_cls_input_shape():
    assert cls_resize_normalize(np.zeros((30, 100, 3), np.uint8)).shape == (3, 48, 192)


def _crop(h, w):
    return np.zeros((h, w, 3), dtype=np.uint8)


def test_rec_batch_sorts_by_ratio_and_covers_every_crop():
    crops = [_crop(10, 100), _crop(10, 20), _crop(10, 500), _crop(10, 50), _crop(10, 30)]
    batches = rec_batches(crops, height=48, batch_size=2, min_width=320)
    indices = [i for idx, _ in batches for i in idx]
    assert indices == [1, 4, 3, 0, 2]                 # ascending w/h
    assert [b.shape[0] for _, b in batches] == [2, 2, 1]
    assert batches[0][1].shape == (2, 3, 48, 320)     # floor of 320
    assert batches[1][1].shape == (2, 3, 48, 480)     # int(48 * 10)
    assert batches[2][1].shape == (1, 3, 48, 2400)


def test_rec_batch_original_single_batch():
    crops = [_crop(10, 100), _crop(20, 50)]
    [(indices, batch)] = rec_batches(crops, height=32, batch_size=None, min_width=0)
    assert sorted(indices) == [0, 1]
    assert batch.shape == (2, 3, 32, 320)             # int(32 * 10)


def test_rec_batch_empty():
    assert rec_batches([]) == []


def test_rec_batch_caps_batch_size_times_width():
    # widths 320, 320, 960, 1440, 1440 (ratios 2, 5, 20, 30, 30 at height 48)
    crops = [_crop(10, 20), _crop(10, 50), _crop(10, 200), _crop(10, 300), _crop(10, 300)]
    batches = rec_batches(crops, height=48, batch_size=6, min_width=320, max_total_width=3200)
    assert [idx for idx, _ in batches] == [[0, 1, 2], [3, 4]]
    assert all(b.shape[0] * b.shape[3] <= 3200 for _, b in batches)
    one = rec_batches([_crop(10, 1000)], height=48, max_total_width=3200)
    assert one[0][1].shape == (1, 3, 48, 4800)        # a line wider than the cap goes alone
