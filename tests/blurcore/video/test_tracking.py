"""Tracking is a pure function of boxes over time: every rule checked on synthetic detections."""

import numpy as np
import pytest

from blurcore.boxes import Boxes, as_boxes, empty_boxes
from blurcore.video.tracking import TrackingOptions, track_faces

OPTIONS = TrackingOptions(max_gap=10, extend=3, smooth=1, growth_per_frame=0.05, max_growth=1.5)
WIDTH, HEIGHT = 640, 360


def face(x: float, y: float, side: float = 40.0, score: float = 0.9) -> Boxes:
    return as_boxes([[x, y, x + side, y + side, score]])


def covers(regions: Boxes, box: Boxes) -> bool:
    """Some region contains the whole of ``box``."""
    b = box[0]
    return bool(
        np.any(
            (regions[:, 0] <= b[0])
            & (regions[:, 1] <= b[1])
            & (regions[:, 2] >= b[2])
            & (regions[:, 3] >= b[3])
        )
    )


def moving_face(frames: int, step: float = 5.0) -> list[Boxes]:
    return [face(100 + step * i, 100) for i in range(frames)]


def test_every_detection_is_covered_in_its_own_frame():
    detections = moving_face(20)
    detections[7] = np.concatenate([detections[7], face(400, 200, side=30)])
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    for frame, found in enumerate(detections):
        for box in found:
            assert covers(tracking.regions[frame], box[None, :]), frame


def test_missed_frames_between_two_detections_are_filled_on_the_line_between_them():
    truth = moving_face(20, step=6.0)
    detections = [b if not 8 <= i <= 12 else empty_boxes() for i, b in enumerate(truth)]
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    assert len(tracking.tracks) == 1
    for frame in range(8, 13):
        assert covers(tracking.regions[frame], truth[frame]), frame


def test_gap_longer_than_max_gap_splits_the_track_and_is_not_filled():
    truth = moving_face(40, step=1.0)
    detections = [b if not 10 <= i < 30 else empty_boxes() for i, b in enumerate(truth)]
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    assert len(tracking.tracks) == 2
    assert len(tracking.regions[20]) == 0  # 10 frames from either end: beyond the extension


def test_track_is_extended_before_its_first_and_after_its_last_detection():
    detections = [empty_boxes()] * 10 + moving_face(5) + [empty_boxes()] * 10
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    (track,) = tracking.tracks
    assert (track.first_frame, track.last_frame) == (10 - OPTIONS.extend, 14 + OPTIONS.extend)
    anonymized = [i for i, regions in enumerate(tracking.regions) if len(regions)]
    assert anonymized == list(range(track.first_frame, track.last_frame + 1))


def test_extension_follows_the_tracks_velocity():
    step = 8.0
    detections = moving_face(6, step=step) + [empty_boxes()] * 3
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    predicted = face(100 + step * 8, 100)  # where the face would be two frames after the last
    assert covers(tracking.regions[8], predicted)


def test_two_faces_crossing_paths_keep_their_own_tracks():
    left = [face(100 + 10 * i, 100) for i in range(20)]
    right = [face(400 - 10 * i, 100) for i in range(20)]
    detections = [np.concatenate([a, b]) for a, b in zip(left, right, strict=True)]
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    assert len(tracking.tracks) == 2
    assert {t.detected_frames for t in tracking.tracks} == {20}


def test_a_far_away_detection_starts_a_new_track():
    detections = [face(100, 100), face(500, 250), face(100, 100)]
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    assert len(tracking.tracks) == 2


def test_a_much_larger_box_in_the_same_place_is_another_face():
    detections = [face(100, 100, side=20), face(90, 90, side=60)]
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    assert len(tracking.tracks) == 2


def test_smoothing_removes_jitter_of_the_box_size():
    sides = [40.0, 48.0] * 10
    detections = [face(100, 100, side=s) for s in sides]
    tracking = track_faces(detections, WIDTH, HEIGHT, OPTIONS)
    widths = [float(r[0, 2] - r[0, 0]) for r in tracking.regions[2:-2]]
    raw_spread = max(sides) - min(sides)
    assert max(widths) - min(widths) < raw_spread / 2


def test_boxes_grow_with_distance_from_the_nearest_detection():
    detections = [face(100, 100)] + [empty_boxes()] * 8 + [face(100, 100)]
    tracking = track_faces(detections, WIDTH, HEIGHT, TrackingOptions(max_gap=10, smooth=0))
    width_at_edge = float(np.ptp(tracking.regions[0][0, [0, 2]]))
    width_in_middle = float(np.ptp(tracking.regions[5][0, [0, 2]]))
    assert width_in_middle > width_at_edge * 1.05


def test_regions_cut_by_the_frame_stay_whole_and_go_once_outside():
    detections = [face(-30, 10, side=40)] + [face(-60, 10, side=40)] + [empty_boxes()] * 4
    tracking = track_faces(detections, 100, 100, OPTIONS)
    assert tracking.regions[0][0, 0] <= -30.0  # not clipped: its shape is the whole face's
    assert len(tracking.regions[4]) == 0  # carried on to the left, out of the frame


def test_track_summary_reports_largest_box_and_mean_score():
    detections = [face(100, 100, side=30, score=0.5), face(100, 100, side=36, score=0.7)]
    (track,) = track_faces(detections, WIDTH, HEIGHT, OPTIONS).tracks
    assert track.largest == pytest.approx((100.0, 100.0, 36.0, 36.0))
    assert track.mean_score == pytest.approx(0.6)
    assert track.detected_frames == 2


def test_no_detections_give_empty_regions_for_every_frame():
    tracking = track_faces([empty_boxes()] * 4, WIDTH, HEIGHT, OPTIONS)
    assert tracking.tracks == []
    assert [len(r) for r in tracking.regions] == [0, 0, 0, 0]


def test_options_for_rate_are_set_in_seconds():
    at_50 = TrackingOptions.for_rate(50.0)
    at_25 = TrackingOptions.for_rate(25.0)
    assert at_50.max_gap == 2 * at_25.max_gap
    assert at_50.extend == 2 * at_25.extend
    assert at_50.growth_per_frame == pytest.approx(at_25.growth_per_frame / 2)


def test_a_weak_box_continues_a_track_but_never_starts_one():
    strong = [face(100 + 5 * i, 100) if i < 3 else empty_boxes() for i in range(30)]
    weak = [empty_boxes()] * 3 + [face(100 + 5 * i, 100, score=0.12) for i in range(3, 30)]
    followed = track_faces(strong, WIDTH, HEIGHT, OPTIONS, weak)
    (track,) = followed.tracks
    assert track.detected_frames == 30  # the weak boxes carried it through the whole clip
    assert covers(followed.regions[29], weak[29])
    alone = track_faces([empty_boxes()] * 30, WIDTH, HEIGHT, OPTIONS, weak)
    assert alone.tracks == []


def test_a_weak_box_does_not_displace_the_face_found_in_the_same_frame():
    strong = [face(100, 100)] * 5
    weak = [face(104, 104, score=0.1)] * 5
    (track,) = track_faces(strong, WIDTH, HEIGHT, OPTIONS, weak).tracks
    assert track.detected_frames == 5
    assert track.mean_score == pytest.approx(0.9)
