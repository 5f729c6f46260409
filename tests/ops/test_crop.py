import numpy as np
import pytest

from pdserving.ops.crop import rotate_crop


def _image():
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[20:40, 30:130] = (0, 0, 255)
    return img


def test_axis_aligned_crop_has_box_size_and_content():
    box = np.array([[30, 20], [130, 20], [130, 40], [30, 40]], dtype=np.float32)
    crop = rotate_crop(_image(), box)
    assert crop.shape == (20, 100, 3)
    assert np.all(crop[2:-2, 2:-2] == (0, 0, 255))


def test_tilted_box_uses_longer_edges():
    box = np.array([[10, 10], [110, 20], [108, 45], [10, 40]], dtype=np.float32)
    crop = rotate_crop(_image(), box)
    assert crop.shape[:2] == (30, int(np.hypot(100, 10)))   # max(30, 25.1) x max(100.5, 98.1)


@pytest.mark.parametrize("h, rotated", [(14, False), (15, True), (40, True)])
def test_tall_crop_rotated_from_ratio_1_5(h, rotated):
    box = np.array([[50, 10], [60, 10], [60, 10 + h], [50, 10 + h]], dtype=np.float32)
    crop = rotate_crop(_image(), box)
    assert crop.shape[:2] == ((10, h) if rotated else (h, 10))


def test_rotation_is_counterclockwise():
    img = np.zeros((30, 10, 3), dtype=np.uint8)
    img[:5] = 255                                       # top of a tall crop
    box = np.array([[0, 0], [10, 0], [10, 30], [0, 30]], dtype=np.float32)
    crop = rotate_crop(img, box)
    assert crop.shape[:2] == (10, 30)
    assert crop[:, :3].mean() > 200 and crop[:, -3:].mean() < 50   # top went to the left


def test_degenerate_box_is_an_error():
    with pytest.raises(ValueError):
        rotate_crop(_image(), np.array([[5, 5], [5, 5], [5, 5], [5, 5]], dtype=np.float32))
