"""The video protocol's scorer on synthetic frames, and its evaluation on tiny synthetic clips."""

import json
import math
import shutil
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from blurcore.video.evaluation import (
    ANNOTATIONS_FILE,
    TRACKED_TAGS,
    VideoClip,
    decoded_frames,
    evaluate_video_clips,
    format_video_report,
    load_clips,
)
from blurcore.video.scoring import (
    RESOLVABLE_FACES,
    Box,
    ClipScorer,
    DatasetScore,
    FaceFrame,
    FrameScore,
    FrameTruth,
    TrackedBox,
    heavily_occluded,
    score_frame,
    video_size_bucket,
)

Frame = npt.NDArray[np.uint8]
HEIGHT, WIDTH = 96, 128


def textured(height: int = HEIGHT, width: int = WIDTH) -> Frame:
    """A smooth picture with no near-black pixel, so every pixel is evidence."""
    rows, cols = np.mgrid[0:height, 0:width]
    picture = np.stack([60 + rows, 80 + cols // 2, 120 + (rows + cols) // 4], axis=2)
    return np.asarray(picture, np.uint8)


def painted(frame: Frame, *boxes: Box, value: int = 0) -> Frame:
    out = frame.copy()
    for x, y, w, h in boxes:
        out[math.floor(y) : math.ceil(y + h), math.floor(x) : math.ceil(x + w)] = value
    return out


def truth(*faces: tuple[Box, int], occluder: Box | None = None) -> FrameTruth:
    return FrameTruth(tuple(TrackedBox(box, track) for box, track in faces), occluder=occluder)


def only_face(original: Frame, output: Frame, frame_truth: FrameTruth) -> FaceFrame:
    (face,) = score_frame(original, output, frame_truth).faces
    return face


# One frame


def test_every_box_painted_black_is_fully_covered():
    faces = (((10.25, 12.5, 20.5, 24.75), 0), ((60.0, 30.0, 40.0, 40.0), 1))
    original = textured()
    output = painted(original, *(box for box, _ in faces))
    score = score_frame(original, output, truth(*faces))
    assert [face.coverage for face in score.faces] == [1.0, 1.0]
    assert all(face.protected for face in score.faces)
    assert score.anonymized_elsewhere == 0.0


def test_unchanged_frame_covers_nothing():
    original = textured()
    face = only_face(original, original.copy(), truth(((10.0, 10.0, 40.0, 40.0), 0)))
    assert face.coverage == 0.0
    assert not face.protected


@pytest.mark.parametrize(
    ("painted_columns", "coverage", "protected"), [(14, 0.7, False), (17, 0.85, True)]
)
def test_a_face_is_protected_from_80_percent_coverage(painted_columns, coverage, protected):
    original = textured()
    output = painted(original, (20.0, 20.0, painted_columns, 30.0))
    face = only_face(original, output, truth(((20.0, 20.0, 20.0, 30.0), 0)))
    assert face.coverage == pytest.approx(coverage)
    assert face.protected is protected


def test_a_box_holds_every_pixel_it_touches():
    original = textured()
    output = painted(original, (11.0, 10.0, 4.0, 2.0))  # columns 11 to 14 of rows 10 and 11
    # The box touches columns 10 to 14 and rows 10 and 11 (the last only by a tenth): 8 of 10.
    face = only_face(original, output, truth(((10.5, 10.0, 4.5, 1.1), 0)))
    assert face.coverage == 0.8
    assert face.protected


def test_originally_dark_pixels_leave_the_ratio():
    box = (20.0, 20.0, 40.0, 20.0)
    original = painted(textured(), (20.0, 20.0, 16.0, 20.0), value=10)  # 40 % already dark
    output = painted(original, (36.0, 20.0, 24.0, 20.0))  # the other 60 % painted
    assert only_face(original, output, truth((box, 0))).coverage == 1.0
    # Dark pixels left as they were count as painted by nobody: unchanged scores 0.
    assert only_face(original, original.copy(), truth((box, 0))).coverage == 0.0


def test_occluder_pixels_leave_the_ratio():
    box = (20.0, 20.0, 40.0, 20.0)
    original = textured()
    output = painted(original, (20.0, 20.0, 28.0, 20.0))  # 70 % painted, the rest behind the bar
    bar = (48.0, 0.0, 30.0, float(HEIGHT))
    assert only_face(original, output, truth((box, 0), occluder=bar)).protected
    without_bar = only_face(original, output, truth((box, 0)))
    assert without_bar.coverage == pytest.approx(0.7)
    assert not without_bar.protected


def test_box_mostly_dark_in_the_original_is_unmeasurable_and_skipped():
    box = (20.0, 20.0, 40.0, 20.0)
    original = painted(textured(), (20.0, 20.0, 24.0, 20.0), value=5)  # 60 % dark
    output = painted(original, box)
    face = only_face(original, output, truth((box, 0)))
    assert face.coverage is None
    assert not face.measurable
    assert not face.protected
    scorer = ClipScorer("clip", 25.0, frozenset())
    scorer.add_frame(0, original, output, truth((box, 0)))
    counts = scorer.result().buckets["32-64"]
    assert (counts.face_frames, counts.protected, counts.unmeasurable) == (0, 0, 1)
    assert counts.protected_share is None


def test_paint_outside_every_box_is_reported_apart():
    original = textured()
    output = painted(original, (0.0, 0.0, float(WIDTH), 24.0))  # a quarter of the frame
    score = score_frame(original, output, truth(((40.0, 40.0, 20.0, 20.0), 0)))
    assert score.faces[0].coverage == 0.0
    assert score.anonymized_elsewhere == pytest.approx(0.25)


def test_frames_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        score_frame(textured(), textured(HEIGHT + 4), truth())


# Buckets and runs


@pytest.mark.parametrize(
    ("longer_side", "bucket"),
    [(15.99, "<16"), (16.0, "16-32"), (31.99, "16-32"), (32.0, "32-64"), (64.0, ">=64"),
     (500.0, ">=64")],
)  # fmt: skip
def test_size_bucket_edges_belong_to_the_bucket_above(longer_side, bucket):
    assert video_size_bucket(longer_side) == bucket


def test_all_resolvable_bucket_starts_at_16_px():
    scorer = ClipScorer("clip", 25.0, frozenset())
    original = textured()
    faces = (((5.0, 5.0, 15.0, 10.0), 0), ((40.0, 5.0, 10.0, 16.0), 1))
    scorer.add_frame(0, original, painted(original, faces[1][0]), truth(*faces))
    buckets = scorer.result().buckets
    assert (buckets["<16"].face_frames, buckets["<16"].protected) == (1, 0)
    assert (buckets["16-32"].face_frames, buckets["16-32"].protected) == (1, 1)
    assert (buckets[RESOLVABLE_FACES].face_frames, buckets[RESOLVABLE_FACES].protected) == (1, 1)


def face(track: int, protected: bool | None, side: float = 40.0) -> FaceFrame:
    """A face-frame; ``protected`` None makes it unmeasurable."""
    coverage = None if protected is None else (1.0 if protected else 0.0)
    return FaceFrame(track, side, coverage)


def longest_runs(sequence: list[tuple[int, list[FaceFrame]]]) -> dict[int, int]:
    scorer = ClipScorer("clip", 25.0, frozenset())
    for index, faces in sequence:
        scorer.add(index, FrameScore(tuple(faces), anonymized_elsewhere=0.0))
    return {track: runs.longest_unprotected_run for track, runs in scorer.result().tracks.items()}


def test_longest_run_counts_consecutive_unprotected_frames_per_track():
    u, p = False, True
    sequence = [
        (0, [face(1, u), face(2, u)]),
        (1, [face(1, u), face(2, u)]),
        (2, [face(1, u)]),  # track 2 absent (or ignored): its run ends
        (3, [face(1, p), face(2, u)]),
        (4, [face(1, u), face(2, u)]),
        (5, [face(1, u), face(2, u), face(3, u, side=31.0)]),  # track 3 too small to count
        (6, [face(1, u, side=20.0), face(2, None)]),  # small, unmeasurable: both runs end
        (7, [face(1, u), face(2, u)]),
        # frame 8 was not scored (no output frame on screen): every run ends
        (9, [face(1, u), face(2, u)]),
    ]
    assert longest_runs(sequence) == {1: 3, 2: 3}


def test_track_protected_throughout_has_a_run_of_zero():
    assert longest_runs([(0, [face(4, True)]), (1, [face(4, True)])]) == {4: 0}


def unprotected_run(scorer: ClipScorer, track: int, frames: range) -> None:
    original = textured()
    for index in frames:
        scorer.add_frame(index, original, original, truth(((10.0, 10.0, 40.0, 40.0), track)))


def test_worst_run_with_and_without_heavily_occluded_tracks():
    first = ClipScorer("first.mp4", 25.0, heavily_occluded_tracks=frozenset({21}))
    unprotected_run(first, 21, range(0, 10))
    unprotected_run(first, 3, range(10, 12))
    second = ClipScorer("second.mp4", 25.0, heavily_occluded_tracks=frozenset())
    unprotected_run(second, 21, range(0, 4))
    clips = (first.result(), second.result())

    worst = clips[0].worst_run()
    assert worst is not None
    assert (worst.track, worst.frames, worst.seconds) == (21, 10, pytest.approx(0.4))
    overall = DatasetScore(clips)
    worst_overall = overall.worst_run()
    assert worst_overall is not None
    assert (worst_overall.clip, worst_overall.track, worst_overall.frames) == ("first.mp4", 21, 10)
    clear_tracks = overall.worst_run(without_heavily_occluded=True)
    assert clear_tracks is not None
    assert (clear_tracks.clip, clear_tracks.track, clear_tracks.frames) == ("second.mp4", 21, 4)
    assert overall.buckets["32-64"].face_frames == 16


def test_heavily_occluded_tracks_come_from_wider_attributes():
    attrs = [{"occlusion": "none"}, {"occlusion": "heavy"}, {"occlusion": "partial"}, {}]
    assert heavily_occluded(attrs) == frozenset({1})
    assert heavily_occluded(None) == frozenset()


def test_frame_truth_reads_the_annotation_entry():
    entry = {
        "faces": [[1.5, 2.0, 30.0, 40.0, 7]],
        "ignore": [[100.0, 2.0, 10.0, 10.0, -1, "source"]],
        "occluder": [60, 0, 12, 96],
    }
    parsed = FrameTruth.from_json(entry)
    assert parsed.faces == (TrackedBox((1.5, 2.0, 30.0, 40.0), 7),)
    assert parsed.ignore == (TrackedBox((100.0, 2.0, 10.0, 10.0), -1),)
    assert parsed.occluder == (60.0, 0.0, 12.0, 96.0)
    assert parsed.dont_care == ()


# Whole clips: a moving face, written to real files

FPS = 10
FRAMES = 10
FACE_SIDE = 24.0
FACE_STEP = 8.0  # pixels a frame: an output off by one frame covers a third of the face too little
TAGS = {
    "title": "a test clip",
    "comment": "should not survive",
    "location": "+31.2304+121.4737/",
    "creation_time": "2026-05-01T10:00:00Z",
}


def face_box(index: int) -> Box:
    return (8.0 + FACE_STEP * index, 30.0, FACE_SIDE, FACE_SIDE)


def write_original(path: Path) -> None:
    """An MP4 with audio and identifying tags, as a phone would write it."""
    with av.open(str(path), "w") as container:
        container.metadata.update(TAGS)
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"qscale": "2"}
        audio = container.add_stream("aac", rate=8000)
        for index in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(textured(), format="bgr24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        sound = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        sound.sample_rate = 8000
        container.mux(audio.encode(sound))
        container.mux(audio.encode())


def clip_for(path: Path) -> VideoClip:
    return VideoClip(
        path=path,
        motion="pan",
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        frames=tuple(truth((face_box(index), 0)) for index in range(FRAMES)),
        heavily_occluded_tracks=frozenset(),
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> VideoClip:
    path = tmp_path_factory.mktemp("clip") / "moving.mp4"
    write_original(path)
    return clip_for(path)


def black_boxes_writer(
    keep: Callable[[int], bool] = lambda _index: True,
    fps: float = FPS,
    reshape: Callable[[Frame], Frame] = lambda frame: frame,
) -> Callable[[Path, Path], None]:
    """An anonymizer that paints each frame's true face box (2 px wider all round) black and
    writes the frames ``keep`` selects with OpenCV, which drops the audio and tags."""

    def anonymize(source: Path, target: Path) -> None:
        frames: Iterator[Frame] = (
            reshape(painted(decoded.pixels, grown(face_box(index))))
            for index, decoded in enumerate(decoded_frames(source))
            if keep(index)
        )
        first = next(frames)
        size = (first.shape[1], first.shape[0])
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        for frame in (first, *frames):
            writer.write(frame)
        writer.release()

    return anonymize


def grown(box: Box, margin: float = 2.0) -> Box:
    x, y, w, h = box
    return (x - margin, y - margin, w + 2 * margin, h + 2 * margin)


def copy_unchanged(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def test_clip_with_every_face_painted_scores_one_and_loses_audio_and_tags(clip):
    result = evaluate_video_clips([clip], black_boxes_writer())
    (evaluated,) = result.clips
    assert evaluated.score.buckets["16-32"].protected_share == 1.0
    assert evaluated.score.buckets["16-32"].face_frames == FRAMES
    worst = result.score.worst_run()
    assert worst is None  # no face of 32 px or more
    assert evaluated.output_frames == FRAMES
    assert not evaluated.frame_count_changed
    assert not evaluated.size_changed
    assert not evaluated.transposed
    assert (evaluated.audio_in, evaluated.audio_out, evaluated.audio_kept) == (True, False, False)
    assert evaluated.tags_in == TRACKED_TAGS
    assert evaluated.tags_survived == ()
    assert evaluated.frames_per_second > 0


def test_unchanged_copy_scores_zero_and_keeps_audio_and_tags(clip):
    result = evaluate_video_clips([clip], copy_unchanged)
    (evaluated,) = result.clips
    assert evaluated.score.buckets[RESOLVABLE_FACES].protected_share == 0.0
    assert evaluated.audio_kept
    assert evaluated.tags_survived == TRACKED_TAGS
    assert result.tags_survived == TRACKED_TAGS


def test_half_the_frames_are_paired_by_time(clip):
    # Every other frame at half the rate: odd frames show the previous frame's fill, a face step
    # behind, which covers two thirds of the face.
    result = evaluate_video_clips([clip], black_boxes_writer(lambda i: i % 2 == 0, fps=FPS / 2))
    (evaluated,) = result.clips
    assert evaluated.output_frames == FRAMES // 2
    assert evaluated.frame_count_changed
    assert evaluated.unpaired_frames == 0
    assert evaluated.score.frames_scored == FRAMES
    counts = evaluated.score.buckets["16-32"]
    assert (counts.face_frames, counts.protected) == (FRAMES, FRAMES // 2)


def test_frames_past_the_end_of_a_short_output_are_unpaired(clip):
    result = evaluate_video_clips([clip], black_boxes_writer(lambda i: i < 6))
    (evaluated,) = result.clips
    assert (evaluated.output_frames, evaluated.unpaired_frames) == (6, 4)
    assert evaluated.score.frames_scored == 6
    assert evaluated.score.buckets["16-32"].protected_share == 1.0


def test_resized_output_is_resized_back(clip):
    stretched = black_boxes_writer(reshape=lambda f: cv2.resize(f, (WIDTH, HEIGHT + 8)))
    (evaluated,) = evaluate_video_clips([clip], stretched).clips
    assert evaluated.output_size == (WIDTH, HEIGHT + 8)
    assert evaluated.size_changed
    assert not evaluated.transposed
    assert evaluated.score.buckets["16-32"].protected_share == 1.0


@pytest.mark.parametrize("turn", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE])
def test_transposed_output_is_turned_back_and_flagged(clip, turn):
    sideways = black_boxes_writer(reshape=lambda f: cv2.rotate(f, turn))
    (evaluated,) = evaluate_video_clips([clip], sideways).clips
    assert evaluated.output_size == (HEIGHT, WIDTH)
    assert evaluated.transposed
    assert not evaluated.size_changed
    assert evaluated.score.buckets["16-32"].protected_share == 1.0


def test_report_and_dict_show_each_clip(clip):
    result = evaluate_video_clips([clip], black_boxes_writer())
    report = format_video_report(result)
    assert "| moving.mp4 (pan) | - | 1.000 | - | - | 1.000 | - | - |" in report
    assert "| moving.mp4 | 10 / 10 | 0 | 128x96 | no | **no** | none | 0 |" in report
    as_dict = json.loads(json.dumps(result.to_dict()))
    assert as_dict["buckets"]["16-32"] == {
        "face_frames": 10,
        "protected": 10,
        "unmeasurable": 0,
        "protected_share": 1.0,
    }
    assert as_dict["per_clip"][0]["audio_in"] is True
    assert as_dict["per_clip"][0]["audio_out"] is False


def test_load_clips_reads_annotations_and_selects_by_name(tmp_path):
    entry = {
        "file": "clips/dev09_pan_x.mp4",
        "fps": 25,
        "width": 960,
        "height": 540,
        "motion": "pan",
        "frames_gt": [{"faces": [[1.0, 2.0, 40.0, 40.0, 0]], "ignore": []}],
        "track_attrs": [{"occlusion": "heavy"}],
    }
    other = {**entry, "file": "clips/dev10_zoom_y.mp4"}
    (tmp_path / ANNOTATIONS_FILE).write_text(json.dumps({"clips": [entry, other]}))
    (selected,) = load_clips(tmp_path, ["dev09"])
    assert selected.path == tmp_path / "clips" / "dev09_pan_x.mp4"
    assert selected.heavily_occluded_tracks == frozenset({0})
    assert len(selected.frames) == 1
    assert len(load_clips(tmp_path)) == 2
    with pytest.raises(ValueError, match="dev11"):
        load_clips(tmp_path, ["dev11"])
    with pytest.raises(FileNotFoundError):
        load_clips(tmp_path / "absent")
