import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from blurcore.boxes import (
    as_boxes,
    centres_inside,
    empty_boxes,
    iou_matrix,
    keep_plausible,
    merge_overlapping,
    pad,
    raise_top,
    scale,
    shift,
    suppress_duplicates,
    to_xywh,
    widen_narrow,
)


def test_iou_matrix_identical_disjoint_and_half():
    a = as_boxes([[0, 0, 10, 10, 1]])
    b = as_boxes([[0, 0, 10, 10, 1], [20, 20, 30, 30, 1], [0, 0, 10, 5, 1]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 0.0, 0.5]])


def test_merge_overlapping_keeps_separate_faces():
    boxes = as_boxes([[0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.8]])
    assert len(merge_overlapping(boxes, 0.3)) == 2


def test_merge_overlapping_grows_kept_box_to_cluster_union():
    boxes = as_boxes([[0, 0, 10, 10, 0.9], [2, 0, 12, 10, 0.5]])
    merged = merge_overlapping(boxes, 0.3)
    np.testing.assert_allclose(merged, [[0, 0, 12, 10, 0.9]])


def test_merge_overlapping_empty_input():
    assert merge_overlapping(empty_boxes(), 0.3).shape == (0, 5)


box_strategy = st.tuples(
    st.floats(0, 500), st.floats(0, 500), st.floats(1, 200), st.floats(1, 200), st.floats(0, 1)
).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3], t[4]])


@given(st.lists(box_strategy, min_size=1, max_size=30), st.floats(0.05, 1.0))
def test_merge_overlapping_never_loses_covered_area(rows, threshold):
    boxes = as_boxes(rows)
    merged = merge_overlapping(boxes, threshold)
    # Every input box lies inside some merged box: NMS never uncovers a face.
    for box in boxes:
        inside = (
            (merged[:, 0] <= box[0] + 1e-3)
            & (merged[:, 1] <= box[1] + 1e-3)
            & (merged[:, 2] >= box[2] - 1e-3)
            & (merged[:, 3] >= box[3] - 1e-3)
        )
        assert inside.any()
    assert len(merged) <= len(boxes)


def test_pad_scales_around_centre_and_clips():
    padded = pad(as_boxes([[10, 10, 20, 30, 0.7]]), 1.5, width=100, height=100)
    np.testing.assert_allclose(padded, [[7.5, 5, 22.5, 35, 0.7]])
    clipped = pad(as_boxes([[0, 0, 10, 10, 1]]), 2.0, width=12, height=8)
    np.testing.assert_allclose(clipped, [[0, 0, 12, 8, 1]])


def test_raise_top_grows_boxes_upward_only_and_stops_at_the_image_top():
    raised = raise_top(as_boxes([[10, 20, 30, 60, 0.7], [0, 2, 10, 22, 0.9]]), 0.25)
    np.testing.assert_allclose(raised, [[10, 10, 30, 60, 0.7], [0, 0, 10, 22, 0.9]])


def test_keep_plausible_drops_tiny_and_elongated_boxes():
    boxes = as_boxes([[0, 0, 3, 3, 1], [0, 0, 10, 12, 1], [0, 0, 40, 5, 1]])
    kept = keep_plausible(boxes, min_side=4, max_aspect=2.5)
    np.testing.assert_allclose(kept, [[0, 0, 10, 12, 1]])


def test_widen_narrow_widens_tall_boxes_around_their_centre_only():
    boxes = as_boxes([[10, 0, 20, 30, 0.4], [0, 0, 20, 24, 0.9]])
    np.testing.assert_allclose(widen_narrow(boxes, 1.5), [[5, 0, 25, 30, 0.4], [0, 0, 20, 24, 0.9]])


def test_scale_and_shift_move_coordinates_not_scores():
    boxes = as_boxes([[1, 2, 3, 4, 0.5]])
    np.testing.assert_allclose(shift(scale(boxes, 2.0), 10, 20), [[12, 24, 16, 28, 0.5]])


def test_to_xywh_reports_width_and_height():
    assert to_xywh(as_boxes([[10, 20, 40, 60, 0.87654]])) == [[10.0, 20.0, 30.0, 40.0, 0.877]]


@given(st.lists(box_strategy, min_size=1, max_size=20), st.floats(1.0, 3.0))
def test_pad_always_contains_the_face_inside_the_image(rows, factor):
    boxes = as_boxes(rows)
    padded = pad(boxes, factor, width=800, height=800)
    inside = np.clip(boxes[:, :4], 0, 800)
    assert (padded[:, :2] <= inside[:, :2] + 1e-3).all()
    assert (padded[:, 2:4] >= inside[:, 2:4] - 1e-3).all()


@given(st.lists(box_strategy, min_size=1, max_size=30), st.floats(0.05, 1.0))
def test_suppress_duplicates_keeps_the_best_box_of_each_overlap(rows, threshold):
    boxes = as_boxes(rows)
    kept = suppress_duplicates(boxes, threshold)
    assert boxes[:, 4].max() in kept[:, 4]
    overlaps = iou_matrix(kept, kept) - np.eye(len(kept))
    assert (overlaps < threshold).all()


def test_centres_inside_counts_the_left_and_top_edges_but_not_the_right_and_bottom():
    regions = as_boxes([[10, 10, 20, 20, 1.0]])
    boxes = as_boxes(
        [
            [8, 8, 12, 12, 0.9],  # centre (10, 10): on the top-left corner, inside
            [18, 18, 22, 22, 0.9],  # centre (20, 20): on the bottom-right corner, outside
            [0, 0, 4, 4, 0.9],  # far away
        ]
    )
    assert centres_inside(boxes, regions).tolist() == [True, False, False]
    assert centres_inside(boxes, empty_boxes()).tolist() == [False, False, False]
