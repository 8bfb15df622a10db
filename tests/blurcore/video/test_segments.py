"""A clip cut into segments, each step's output passed on as JSON, gives what one worker gives."""

import io
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from blurcore.boxes import Boxes
from blurcore.errors import UnsupportedVideoError
from blurcore.params import AnonymizeParams, Mode, Profile
from blurcore.pipeline import Anonymizer
from blurcore.video.joining import join_segments
from blurcore.video.pipeline import VideoAnonymizer
from blurcore.video.probe import VideoSource
from blurcore.video.scan import Scan, SegmentDetections, track_segments
from blurcore.video.segments import Segment, SegmentPlan, plan_segments
from tests.blurcore.video.clips import (
    AudioSpec,
    ClipSpec,
    audio_packets,
    decoding_times,
    frame_pts,
    keyframe_pts,
    make_clip,
    read_displayed,
)

FILL = AnonymizeParams(profile=Profile.FAST, mode=Mode.FILL)
SAME_PIXELS_MEAN_DIFFERENCE = 2.5
FRAMES = 60
GOP = 12
# Wide gaps after each keyframe, tight ones before it: x264 invents a part's first decoding
# timestamps from the gaps after its first frame, so they fall below the previous part's last.
VFR_GAPS_MS = [200, 200, 40, 40, 40, 40, 40, 40, 40, 10, 10, 10]  # one GOP's
VFR_TIMES_MS = [0, *itertools.accumulate(itertools.islice(itertools.cycle(VFR_GAPS_MS), 59))]
CLIPS = {
    "b-frames.mp4": ClipSpec(frames=FRAMES, keyframe_every=GOP, bframes=3),
    "open-gop.mkv": ClipSpec(frames=FRAMES, keyframe_every=GOP, bframes=3, open_gop=True),
    "hevc.mkv": ClipSpec(frames=FRAMES, codec="libx265", keyframe_every=GOP),  # x265: open GOPs
    "vfr.mp4": ClipSpec(frames=FRAMES, keyframe_every=GOP, bframes=3, times_ms=VFR_TIMES_MS),
    "vp9.webm": ClipSpec(
        frames=FRAMES, codec="libvpx-vp9", keyframe_every=GOP, audio=(AudioSpec(codec="libopus"),)
    ),
}


@pytest.fixture(scope="module")
def videos(anonymizer: Anonymizer) -> VideoAnonymizer:
    return VideoAnonymizer(anonymizer)


def _through_json(document: dict[str, object]) -> dict[str, object]:
    return json.loads(json.dumps(document))  # type: ignore[no-any-return]


def _same_boxes(a: list[Boxes], b: list[Boxes]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _segmented(
    videos: VideoAnonymizer, source: VideoSource, seconds: float, target: Path
) -> tuple[SegmentPlan, Scan]:
    """Every step as separate workers would run it, each handing JSON or files to the next."""
    plan = SegmentPlan.from_dict(_through_json(plan_segments(source, seconds).to_dict()))
    detected = [
        SegmentDetections.from_dict(
            _through_json(videos.detect_segment(source, plan, s.index, FILL).to_dict())
        )
        for s in plan.segments
    ]
    scan = Scan.from_dict(_through_json(track_segments(plan, detected, FILL).to_dict()))
    parts = [target.parent / f"part-{s.index}.mp4" for s in plan.segments]
    for segment, part in zip(plan.segments, parts, strict=True):
        videos.write_segment(source, scan, plan, segment.index, FILL, part, target.name)
    join_segments(source, plan, parts, target)
    return plan, scan


def test_plan_cuts_at_keyframes_about_the_asked_length_apart_and_round_trips(tmp_path):
    source = tmp_path / "clip.mp4"
    make_clip(source, CLIPS["b-frames.mp4"])
    plan = plan_segments(source, seconds=0.5)  # a GOP lasts 0.48 s: every other keyframe
    keyframes = keyframe_pts(source)
    assert [s.start_pts for s in plan.segments] == keyframes[::2]
    assert [s.end_pts for s in plan.segments] == [*keyframes[2::2], None]
    assert [(s.first_frame, s.frames) for s in plan.segments] == [(0, 24), (24, 24), (48, 12)]
    assert plan.frames == FRAMES
    assert SegmentPlan.from_dict(_through_json(plan.to_dict())) == plan
    assert len(plan_segments(source, math.inf).segments) == 1


def test_a_segment_opening_a_gop_that_refers_back_decodes_from_the_keyframe_before(tmp_path):
    closed, opened = tmp_path / "closed.mp4", tmp_path / "open.mkv"
    make_clip(closed, CLIPS["b-frames.mp4"])
    make_clip(opened, CLIPS["open-gop.mkv"])
    assert all(s.decode_from_pts == s.start_pts for s in plan_segments(closed, 0.4).segments)
    keyframes = keyframe_pts(opened)
    plan = plan_segments(opened, 0.4)
    assert [s.decode_from_pts for s in plan.segments] == [0, *keyframes[:-1]]


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_segments_give_the_frames_timestamps_audio_and_outlines_of_one_worker(
    tmp_path, videos, name
):
    source = tmp_path / name
    make_clip(source, CLIPS[name])
    whole = videos.process(source, tmp_path / "whole" / name, FILL)
    plan, scan = _segmented(videos, source, GOP / 25, tmp_path / "joined" / name)
    joined = tmp_path / "joined" / name
    assert len(plan.segments) == FRAMES // GOP
    assert _same_boxes(scan.detections, whole.scan.detections)
    assert _same_boxes(scan.outlines, whole.scan.outlines)
    assert scan.tracks == whole.scan.tracks
    assert scan.times == whole.scan.times
    assert frame_pts(joined) == frame_pts(tmp_path / "whole" / name)
    assert frame_pts(joined) == frame_pts(source)
    assert audio_packets(joined) == audio_packets(source)
    dts = [t for t in decoding_times(joined) if t is not None]  # Matroska stores few
    assert all(a < b for a, b in itertools.pairwise(dts)), dts
    # The same anonymized pixels, encoded with a keyframe at each seam: measured 1.5 levels
    # apart at most; anonymizing moves a face's pixels by tens.
    for index, (one, many) in enumerate(
        zip(read_displayed(tmp_path / "whole" / name), read_displayed(joined), strict=True)
    ):
        difference = np.abs(one.astype(int) - many.astype(int)).mean()
        assert difference < SAME_PIXELS_MEAN_DIFFERENCE, f"frame {index}: {difference}"


def test_segments_search_each_frame_at_the_size_its_place_in_the_whole_clip_asks(tmp_path, videos):
    """Segments of 10 frames while one frame in 3 is searched at full size: a segment counting
    its frames from 0 would search other frames at full size than the whole clip does."""
    source = tmp_path / "clip.mp4"
    make_clip(source, ClipSpec(frames=20, keyframe_every=10))
    plan = plan_segments(source, 0.4)
    assert [s.first_frame for s in plan.segments] == [0, 10]
    params = AnonymizeParams()  # CenterFace: its boxes depend on the size it searches at
    detected = [videos.detect_segment(source, plan, s.index, params) for s in plan.segments]
    whole = videos.scan(source, params)
    assert _same_boxes([b for part in detected for b in part.faces], whole.detections)


def test_a_segment_read_from_a_file_object_detects_what_its_path_does(tmp_path, videos):
    source = tmp_path / "clip.mkv"
    make_clip(source, CLIPS["open-gop.mkv"])
    plan = plan_segments(source, 0.5)
    with source.open("rb") as raw:
        blob = io.BufferedReader(raw)
        from_blob = videos.detect_segment(blob, plan, 1, FILL)
    from_path = videos.detect_segment(source, plan, 1, FILL)
    assert from_blob.times == from_path.times
    assert _same_boxes(from_blob.faces, from_path.faces)


def test_detections_round_trip_through_json_exactly(tmp_path, videos):
    source = tmp_path / "clip.mp4"
    make_clip(source, ClipSpec(frames=8))
    plan = plan_segments(source, math.inf)
    detected = videos.detect_segment(source, plan, 0, AnonymizeParams())
    again = SegmentDetections.from_dict(_through_json(detected.to_dict()))
    assert _same_boxes(again.faces, detected.faces)
    assert _same_boxes(again.weak, detected.weak)
    assert (again.times, again.colour, again.width) == (detected.times, detected.colour, 480)
    scan = track_segments(plan, [detected], FILL)
    document = json.dumps(scan.to_dict())
    assert len(document) < 2000 + 40 * scan.frames  # one face a frame: compact
    assert _same_boxes(Scan.from_dict(json.loads(document)).outlines, scan.outlines)


def _shifted(plan: SegmentPlan, index: int, **changes: int) -> SegmentPlan:
    segments = list(plan.segments)
    segments[index] = Segment(**{**vars(segments[index]), **changes})
    return SegmentPlan(plan.info, plan.time_base, tuple(segments))


def test_a_segment_decoding_fewer_frames_than_planned_fails(tmp_path, videos):
    source = tmp_path / "clip.mp4"
    make_clip(source, CLIPS["b-frames.mp4"])
    plan = plan_segments(source, 0.5)
    wrong = _shifted(_shifted(plan, 1, frames=25), 2, frames=11)  # as many frames in all
    with pytest.raises(UnsupportedVideoError, match="segment 1 decoded 24 of its 25 frames"):
        videos.detect_segment(source, wrong, 1, FILL)
    scan = videos.scan(source, FILL)
    part = tmp_path / "parts" / "part-1.mp4"
    with pytest.raises(UnsupportedVideoError, match="segment 1 decoded 24 of its 25 frames"):
        videos.write_segment(source, scan, wrong, 1, FILL, part, "clip.mp4")
    assert list(part.parent.iterdir()) == []


def test_tracking_refuses_a_missing_or_miscounted_segment(tmp_path, videos):
    source = tmp_path / "clip.mp4"
    make_clip(source, CLIPS["b-frames.mp4"])
    plan = plan_segments(source, 0.5)
    detected = [videos.detect_segment(source, plan, s.index, FILL) for s in plan.segments]
    with pytest.raises(UnsupportedVideoError, match=r"segments \[1\] missing"):
        track_segments(plan, [detected[0], detected[2]], FILL)
    with pytest.raises(UnsupportedVideoError, match="segment 2 detected 12 frames"):
        track_segments(_shifted(plan, 2, frames=13), detected, FILL)


@pytest.mark.parametrize("fault", ["missing", "swapped", "miscounted", "cut"])
def test_a_missing_or_wrong_part_fails_the_join_and_leaves_no_output(tmp_path, videos, fault):
    source = tmp_path / "clip.mp4"
    make_clip(source, CLIPS["b-frames.mp4"])
    plan = plan_segments(source, 0.5)
    scan = videos.scan(source, FILL)
    parts = [tmp_path / f"part-{s.index}.mp4" for s in plan.segments]
    for segment, part in zip(plan.segments, parts, strict=True):
        videos.write_segment(source, scan, plan, segment.index, FILL, part, "out.mp4")
    out = tmp_path / "out"
    cut = tmp_path / "cut.mp4"  # MP4 writes its index last: a part cut short has none
    cut.write_bytes(parts[1].read_bytes()[:5000])
    cases = {
        "cut": (plan, [parts[0], cut, parts[2]], "not a readable video"),
        "missing": (plan, parts[:2], "2 parts for a plan of 3 segments"),
        "swapped": (plan, [parts[1], parts[0], parts[2]], "part 0 does not start where"),
        "miscounted": (
            _shifted(plan, 1, frames=23),
            parts,
            "part 1 holds 24 frames; its segment 23",
        ),
    }
    wrong_plan, given, message = cases[fault]
    with pytest.raises(UnsupportedVideoError, match=message):
        join_segments(source, wrong_plan, given, out / "clip.mp4")
    assert not out.exists() or list(out.iterdir()) == []
