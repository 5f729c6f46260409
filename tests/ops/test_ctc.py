import numpy as np
import pytest

from pdserving.ops.ctc import best_path, ctc_decode, decode_best_path, load_dictionary

CHARS = ["a", "b", "c"]


def _probs(steps, num_classes, p=0.8):
    """One line: a class per step with probability p, the rest spread evenly."""
    out = np.full((len(steps), num_classes), (1 - p) / (num_classes - 1), dtype=np.float32)
    out[np.arange(len(steps)), steps] = p
    return out


def test_load_dictionary_from_path_and_lines(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_bytes("a\r\nb\n \n中\n".encode())
    assert load_dictionary(path) == ["a", "b", " ", "中"]
    assert load_dictionary(str(path)) == ["a", "b", " ", "中"]
    assert load_dictionary(["x\n", "y"]) == ["x", "y"]


def test_blank_first_with_space_style():
    # classes: 0 blank, 1 a, 2 b, 3 c, 4 space
    line = _probs([1, 1, 0, 1, 2, 2, 4, 3, 0], 5)
    [(text, score)] = ctc_decode(line[None], CHARS)
    assert text == "aab c"
    assert score == pytest.approx(0.8)


def test_blank_last_without_space_style():
    # classes: 0 a, 1 b, 2 c, 3 blank
    line = _probs([3, 0, 0, 3, 0, 2, 3, 1], 4)
    [(text, _)] = ctc_decode(line[None], CHARS)
    assert text == "aacb"


def test_score_is_mean_of_kept_steps_only():
    line = _probs([1, 1, 0, 2], 5, p=0.5)
    line[1, 1] = 0.9                        # a merged repeat: not counted
    line[2, 0] = 0.99                       # a blank: not counted
    line[3, 2] = 0.7
    [(text, score)] = ctc_decode(line[None], CHARS)
    assert text == "ab"
    assert score == pytest.approx((0.5 + 0.7) / 2)


def test_batch_and_empty_line():
    batch = np.stack([_probs([0, 0, 0], 5), _probs([3, 0, 3], 5)])
    assert [t for t, _ in ctc_decode(batch, CHARS)] == ["", "cc"]
    assert ctc_decode(batch, CHARS)[0][1] == 0.0


def test_class_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="3 characters"):
        ctc_decode(np.zeros((1, 4, 7), np.float32), CHARS)


def test_wrong_rank_is_an_error():
    with pytest.raises(ValueError):
        ctc_decode(np.zeros((4, 5), np.float32), CHARS)


def test_best_path_is_each_steps_best_class_and_probability():
    batch = np.stack([_probs([1, 1, 0, 4], 5, p=0.6), _probs([3, 0, 3, 2], 5, p=0.9)])
    best = best_path(batch)
    assert best.shape == (2, 4, 2) and best.dtype == np.float32
    assert best[:, :, 0].tolist() == [[1, 1, 0, 4], [3, 0, 3, 2]]
    np.testing.assert_allclose(best[:, :, 1], [[0.6] * 4, [0.9] * 4], rtol=1e-6)


def test_decoding_the_best_path_equals_decoding_the_probabilities():
    batch = np.stack([_probs([1, 1, 0, 1, 2, 2, 4, 3, 0], 5),
                      _probs([0, 3, 3, 0, 3, 1, 0, 0, 2], 5, p=0.7)])
    assert decode_best_path(best_path(batch), 5, CHARS) == ctc_decode(batch, CHARS)
    assert [t for t, _ in decode_best_path(best_path(batch), 5, CHARS)] == ["aab c", "ccab"]


def test_best_path_of_the_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"\(N, T, 2\)"):
        decode_best_path(np.zeros((1, 4, 5), np.float32), 5, CHARS)
