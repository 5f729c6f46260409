import numpy as np
import pytest

from pdserving.ops.cls import apply_flip, needs_flip


def test_flip_only_confident_180():
    probs = np.array([[0.95, 0.05], [0.05, 0.95], [0.1, 0.9], [0.15, 0.85]], dtype=np.float32)
    assert needs_flip(probs).tolist() == [False, True, True, False]
    assert needs_flip(probs, thresh=0.8).tolist() == [False, True, True, True]


def test_apply_flip_turns_marked_crops():
    a = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    out = apply_flip([a, a], np.array([True, False]))
    assert np.array_equal(out[0], a[::-1, ::-1])
    assert out[1] is a


def test_wrong_shape_is_an_error():
    with pytest.raises(ValueError):
        needs_flip(np.zeros((2, 3)))
