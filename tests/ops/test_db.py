import numpy as np
import pytest

from pdserving.ops.db import db_postprocess, filter_boxes, order_points, sort_boxes


def _map(h=128, w=256):
    return np.zeros((h, w), dtype=np.float32)


def _unclipped_size(kh, kw, ratio=1.5):
    """Width and height of a kh x kw kernel after the DB offset (the contour spans kh-1, kw-1)."""
    ch, cw = kh - 1, kw - 1
    d = ch * cw * ratio / (2 * (ch + cw))
    return cw + 2 * d, ch + 2 * d


def test_one_rectangle_gives_one_box_of_unclipped_size_in_original_pixels():
    prob = _map()
    prob[40:60, 50:150] = 0.9               # a 20 x 100 kernel
    ratio = (0.5, 0.25)                     # the map is half the original height, a quarter width
    [box] = db_postprocess(prob, *ratio, (256, 1024))
    w, h = _unclipped_size(20, 100)
    assert box[1, 0] - box[0, 0] == pytest.approx(w / 0.25, abs=2 / 0.25)
    assert box[3, 1] - box[0, 1] == pytest.approx(h / 0.5, abs=2 / 0.5)
    cx, cy = box[:, 0].mean(), box[:, 1].mean()
    assert cx == pytest.approx(99.5 / 0.25, abs=4) and cy == pytest.approx(49.5 / 0.5, abs=2)
    assert box[0, 0] < box[1, 0] and box[0, 1] < box[3, 1]    # tl, tr, br, bl


def test_accepts_batched_map_shape():
    prob = _map()
    prob[40:60, 50:150] = 0.9
    assert db_postprocess(prob[None, None], 1.0, 1.0, prob.shape).shape == (1, 4, 2)


def test_low_mean_region_dropped_by_box_thresh():
    prob = _map()
    prob[40:60, 50:150] = 0.45              # above thresh 0.3, mean below box_thresh 0.5
    assert len(db_postprocess(prob, 1.0, 1.0, prob.shape)) == 0
    assert len(db_postprocess(prob, 1.0, 1.0, prob.shape, box_thresh=0.4)) == 1


def test_tiny_regions_dropped():
    prob = _map()
    prob[10:12, 10:60] = 0.9                # 2 px high: short side < 3 before unclip
    prob[80:83, 100:104] = 0.9              # 3 x 4 kernel: short side < 5 after unclip
    assert len(db_postprocess(prob, 1.0, 1.0, prob.shape)) == 0


def test_boxes_clipped_to_the_image():
    prob = _map()
    prob[0:20, 0:100] = 0.9
    [box] = db_postprocess(prob, 1.0, 1.0, prob.shape)
    assert box.min() == 0
    assert box[:, 0].max() <= 256 and box[:, 1].max() <= 128


def test_max_candidates():
    prob = _map()
    prob[10:30, 10:100] = 0.9
    prob[60:80, 10:100] = 0.9
    assert len(db_postprocess(prob, 1.0, 1.0, prob.shape)) == 2
    assert len(db_postprocess(prob, 1.0, 1.0, prob.shape, max_candidates=1)) == 1


def test_bad_map_shape_is_an_error():
    with pytest.raises(ValueError):
        db_postprocess(np.zeros((2, 1, 8, 8), np.float32), 1.0, 1.0, (8, 8))


def test_order_points():
    pts = np.array([[50, 40], [10, 12], [52, 10], [8, 42]], dtype=np.float32)
    assert order_points(pts).tolist() == [[10, 12], [52, 10], [50, 40], [8, 42]]


def _rect(x, y, w, h):
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)


def test_filter_boxes_orders_clips_and_drops_thin():
    boxes = np.stack([
        _rect(10, 10, 50, 20)[[2, 0, 3, 1]],    # shuffled corners
        _rect(-5, 5, 30, 20),                   # sticks out on the left
        _rect(10, 50, 11, 20),                  # width 11: kept
        _rect(10, 80, 10, 20),                  # width 10: dropped
        _rect(100, 10, 40, 10),                 # height 10: dropped
    ])
    kept = filter_boxes(boxes, (100, 200, 3))
    assert kept.shape == (3, 4, 2)
    assert kept[0].tolist() == _rect(10, 10, 50, 20).tolist()
    assert kept[1, 0].tolist() == [0, 5]
    assert kept[2, 1, 0] == 21


def test_filter_boxes_at_paddleocr3s_3_px_keeps_short_lines():
    boxes = np.stack([_rect(10, 10, 50, 4), _rect(10, 30, 50, 3), _rect(10, 50, 3, 20)])
    assert filter_boxes(boxes, (100, 200), 10, 10).shape == (0, 4, 2)
    assert filter_boxes(boxes, (100, 200), 3, 3).tolist() == [_rect(10, 10, 50, 4).tolist()]


def test_filter_boxes_clip_to_last_pixel():
    [box] = filter_boxes(_rect(150, 80, 60, 30)[None], (100, 200))
    assert box[:, 0].max() == 199 and box[:, 1].max() == 99


def test_sort_boxes_top_to_bottom_then_left_to_right():
    boxes = np.stack([_rect(10, 100, 50, 20), _rect(200, 10, 50, 20), _rect(10, 12, 50, 20)])
    # second line: y 10 vs 12 within tolerance, but x 200 > 10 -> swapped into reading order
    assert [b[0].tolist() for b in sort_boxes(boxes)] == [[10, 12], [200, 10], [10, 100]]


def test_sort_boxes_keeps_distinct_lines():
    boxes = np.stack([_rect(200, 10, 50, 20), _rect(10, 20, 50, 20)])   # dy = 10: not swapped
    assert [b[0].tolist() for b in sort_boxes(boxes)] == [[200, 10], [10, 20]]


def test_sort_boxes_single_pass():
    # three boxes on one line in reverse x: one pass is not a full sort (as in the original)
    boxes = np.stack([_rect(300, 10, 20, 20), _rect(200, 11, 20, 20), _rect(100, 12, 20, 20)])
    assert [b[0, 0] for b in sort_boxes(boxes)] == [200, 100, 300]


def test_empty_inputs():
    assert db_postprocess(_map(), 1.0, 1.0, (128, 256)).shape == (0, 4, 2)
    assert filter_boxes(np.zeros((0, 4, 2)), (10, 10)).shape == (0, 4, 2)
    assert sort_boxes(np.zeros((0, 4, 2))).shape == (0, 4, 2)
