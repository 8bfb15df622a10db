"""Score anonymized video frames against exact per-frame ground truth.

The protocol is that of the video evaluation set (``../shared/data/faces/video/README.md``): the
anonymizer runs in a fill mode that paints faces black, and the *anonymized mask* of a frame is
every output pixel that is near-black (all channels <= 24) where the original pixel was not. A
face-frame is *protected* when at least 80 % of its measurable box area lies in that mask.
Original pixels already that dark, and the pixels of a passing occluder, carry no evidence either
way, so they leave both sides of the ratio; a box with under half of its area measurable is
*unmeasurable* and counted apart.

Over a clip, two views: the share of face-frames protected per size bucket of the box's longer
side, and per face track the longest run of consecutive frames in which a face of >= 32 px was
shown unprotected, since a face visible for a few frames in a row is what a viewer can pause on.

Everything here is pure numpy over decoded frames (H x W x 3 uint8 BGR, displayed orientation);
decoding, pairing and timing live in :mod:`blurcore.video.evaluation`.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from blurcore.scoring import PROTECTED_COVERAGE, size_bucket

NEAR_BLACK_LEVEL = 24
MIN_MEASURABLE_SHARE = 0.5
RUN_MIN_SIDE = 32.0
HEAVY_OCCLUSION = "heavy"  # WIDER's ``occlusion`` attribute: "none", "partial" or "heavy"

LARGE_FACES = ">=64"
# The photo scorer's buckets up to 64 px; its 64-128 and >=128 buckets are one here, because the
# clips have too few face-frames that large to split them.
VIDEO_SIZE_BUCKETS: tuple[str, ...] = ("<16", "16-32", "32-64", LARGE_FACES)
RESOLVABLE_FACES = "all >=16"
VIDEO_REPORT_BUCKETS: tuple[str, ...] = (*VIDEO_SIZE_BUCKETS, RESOLVABLE_FACES)

Frame = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
Box = tuple[float, float, float, float]
"""x, y, w, h in pixels of the displayed frame; pixel ``i`` covers ``[i, i + 1)``."""


def video_size_bucket(longer_side: float) -> str:
    """The photo scorer's bucket, with everything from 64 px up joined into ``>=64``."""
    bucket = size_bucket(longer_side)
    return bucket if bucket in VIDEO_SIZE_BUCKETS else LARGE_FACES


@dataclass(frozen=True)
class TrackedBox:
    box: Box
    track: int

    @property
    def longer_side(self) -> float:
        return max(self.box[2], self.box[3])


@dataclass(frozen=True)
class FrameTruth:
    """One frame's ground truth. ``ignore`` boxes and ``dont_care`` regions are neither scored
    nor a miss; paint on them is not counted as paint elsewhere (see :class:`FrameScore`)."""

    faces: tuple[TrackedBox, ...]
    ignore: tuple[TrackedBox, ...] = ()
    occluder: Box | None = None
    dont_care: tuple[Box, ...] = ()

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> "FrameTruth":
        """From one ``frames_gt`` entry of ``annotations_video.json``."""
        occluder = entry.get("occluder")
        return cls(
            faces=tuple(_tracked(row) for row in entry.get("faces", [])),
            ignore=tuple(_tracked(row) for row in entry.get("ignore", [])),
            occluder=None if occluder is None else _box(occluder),
            dont_care=tuple(_box(row) for row in entry.get("dont_care", [])),
        )


def _box(row: Sequence[Any]) -> Box:
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _tracked(row: Sequence[Any]) -> TrackedBox:
    return TrackedBox(_box(row), int(row[4]))


@dataclass(frozen=True)
class FaceFrame:
    """One face in one frame. ``coverage`` is None when the box is unmeasurable."""

    track: int
    longer_side: float
    coverage: float | None

    @property
    def bucket(self) -> str:
        return video_size_bucket(self.longer_side)

    @property
    def measurable(self) -> bool:
        return self.coverage is not None

    @property
    def protected(self) -> bool:
        # A ratio of pixel counts that is exactly 0.8 divides to the float 0.8: no slack needed.
        return self.coverage is not None and self.coverage >= PROTECTED_COVERAGE

    @property
    def counts_for_runs(self) -> bool:
        return self.measurable and self.longer_side >= RUN_MIN_SIDE


@dataclass(frozen=True)
class FrameScore:
    faces: tuple[FaceFrame, ...]
    anonymized_elsewhere: float
    """Share of the frame anonymized outside every ground-truth box (faces, ignore, dont_care).

    Not part of the protocol, which has no false alarms: it shows what a high coverage cost, since
    a tool that blacked out whole frames would otherwise score perfectly."""


def near_black(frame: Frame) -> BoolArray:
    """Pixels with every channel <= 24."""
    # The brightest channel, taken per channel plane: ten times faster than ``.all(axis=2)``.
    brightest = np.maximum(np.maximum(frame[..., 0], frame[..., 1]), frame[..., 2])
    return np.asarray(brightest <= NEAR_BLACK_LEVEL, dtype=np.bool_)


def score_frame(original: Frame, output: Frame, truth: FrameTruth) -> FrameScore:
    """Score one output frame against its original; both in displayed orientation, same size."""
    if original.shape != output.shape:
        raise ValueError(f"frames differ in shape: {original.shape} and {output.shape}")
    # Only where the original was not near-black can a black fill show; elsewhere a pixel is no
    # evidence either way, and neither is a pixel behind the occluder (it shows no face).
    changeable = ~near_black(original)
    anonymized = near_black(output) & changeable
    evidence = changeable.copy()
    if truth.occluder is not None:
        evidence[_pixel_slices(truth.occluder, evidence.shape)] = False
    faces = tuple(
        FaceFrame(face.track, face.longer_side, measurable_coverage(face.box, anonymized, evidence))
        for face in truth.faces
    )
    outside_truth = np.ones_like(anonymized)
    for box in (*(face.box for face in truth.faces + truth.ignore), *truth.dont_care):
        outside_truth[_pixel_slices(box, anonymized.shape)] = False
    elsewhere = np.count_nonzero(anonymized & outside_truth) / anonymized.size
    return FrameScore(faces, float(elsewhere))


def measurable_coverage(box: Box, anonymized: BoolArray, evidence: BoolArray) -> float | None:
    """Share of the box's measurable pixels that are anonymized; None when under half are
    measurable, or the box is outside the frame.

    A box holds every pixel it touches, each counted whole, as the set's reference figures count
    them (unlike the photo scorer's exact area): on a face that sits at the 50 % measurable edge,
    such as dev03's dark face in the mirror, the two ways disagree on a hundred frames.
    """
    window = _pixel_slices(box, anonymized.shape)
    pixels = evidence[window].size
    measurable = int(np.count_nonzero(evidence[window]))
    if pixels == 0 or measurable == 0 or measurable < MIN_MEASURABLE_SHARE * pixels:
        return None
    return int(np.count_nonzero(anonymized[window] & evidence[window])) / measurable


def _pixel_slices(box: Box, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """Every pixel the box touches, even in part, clipped to the frame."""
    x, y, w, h = box
    rows = slice(max(0, math.floor(y)), min(shape[0], math.ceil(y + h)))
    cols = slice(max(0, math.floor(x)), min(shape[1], math.ceil(x + w)))
    return rows, cols


@dataclass
class BucketCount:
    face_frames: int = 0
    """Measurable face-frames: the protected share's denominator."""
    protected: int = 0
    unmeasurable: int = 0

    @property
    def protected_share(self) -> float | None:
        return self.protected / self.face_frames if self.face_frames else None

    def add(self, face: FaceFrame) -> None:
        if not face.measurable:
            self.unmeasurable += 1
            return
        self.face_frames += 1
        self.protected += int(face.protected)

    def merged(self, other: "BucketCount") -> "BucketCount":
        return BucketCount(
            self.face_frames + other.face_frames,
            self.protected + other.protected,
            self.unmeasurable + other.unmeasurable,
        )


@dataclass
class TrackRuns:
    """Runs of one track over the frames where it is a measurable face of >= 32 px.

    A run is consecutive frame indices in which the face was shown unprotected. Any frame that is
    not one of those ends it: a protected frame, and also a frame where the track is absent,
    ignored, smaller than 32 px or unmeasurable, since in none of them is a >= 32 px face seen
    unprotected.
    """

    scored_frames: int = 0
    unprotected_frames: int = 0
    longest_unprotected_run: int = 0
    current_run: int = 0
    last_unprotected_frame: int = -2  # no frame yet: frame 0 cannot continue a run

    def add(self, frame_index: int, face: FaceFrame) -> None:
        self.scored_frames += 1
        if face.protected:
            return
        self.unprotected_frames += 1
        continues = frame_index == self.last_unprotected_frame + 1
        self.current_run = self.current_run + 1 if continues else 1
        self.last_unprotected_frame = frame_index
        self.longest_unprotected_run = max(self.longest_unprotected_run, self.current_run)


@dataclass(frozen=True)
class UnprotectedRun:
    clip: str
    track: int
    frames: int
    seconds: float


@dataclass(frozen=True)
class ClipScore:
    clip: str
    fps: float
    frames_scored: int
    buckets: dict[str, BucketCount]  # keys: VIDEO_REPORT_BUCKETS
    tracks: dict[int, TrackRuns]  # tracks with a >= 32 px measurable face in some frame
    heavily_occluded_tracks: frozenset[int]
    anonymized_elsewhere: float  # mean over the scored frames, see FrameScore

    def worst_run(self, *, without_heavily_occluded: bool = False) -> UnprotectedRun | None:
        """The track with the longest unprotected run (the first of equals); None without tracks."""
        candidates = [
            (runs.longest_unprotected_run, track)
            for track, runs in self.tracks.items()
            if not (without_heavily_occluded and track in self.heavily_occluded_tracks)
        ]
        if not candidates:
            return None
        frames, track = max(candidates, key=lambda candidate: candidate[0])
        return UnprotectedRun(self.clip, track, frames, frames / self.fps)


class ClipScorer:
    """Accumulates frame scores of one clip, so that frames can be scored as they are decoded."""

    def __init__(self, clip: str, fps: float, heavily_occluded_tracks: frozenset[int]) -> None:
        self.clip = clip
        self.fps = fps
        self.heavily_occluded_tracks = heavily_occluded_tracks
        self.buckets = {label: BucketCount() for label in VIDEO_REPORT_BUCKETS}
        self.tracks: dict[int, TrackRuns] = {}
        self.frames_scored = 0
        self.anonymized_elsewhere_sum = 0.0

    def add_frame(
        self, frame_index: int, original: Frame, output: Frame, truth: FrameTruth
    ) -> None:
        self.add(frame_index, score_frame(original, output, truth))

    def add(self, frame_index: int, frame: FrameScore) -> None:
        """Frames must come in increasing index order; a skipped index ends every run."""
        self.frames_scored += 1
        self.anonymized_elsewhere_sum += frame.anonymized_elsewhere
        for face in frame.faces:
            self.buckets[face.bucket].add(face)
            if face.bucket != VIDEO_SIZE_BUCKETS[0]:
                self.buckets[RESOLVABLE_FACES].add(face)
            if face.counts_for_runs:
                self.tracks.setdefault(face.track, TrackRuns()).add(frame_index, face)

    def result(self) -> ClipScore:
        return ClipScore(
            clip=self.clip,
            fps=self.fps,
            frames_scored=self.frames_scored,
            # Copies: the scorer's counters are live and must not change a returned score.
            buckets={label: replace(count) for label, count in self.buckets.items()},
            tracks={track: replace(runs) for track, runs in self.tracks.items()},
            heavily_occluded_tracks=self.heavily_occluded_tracks,
            anonymized_elsewhere=(
                self.anonymized_elsewhere_sum / self.frames_scored if self.frames_scored else 0.0
            ),
        )


def heavily_occluded(track_attrs: Sequence[Mapping[str, Any]] | None) -> frozenset[int]:
    """Track ids whose source face WIDER marks as heavily occluded (``track_attrs`` is indexed by
    track id; clips made from non-WIDER photos have none)."""
    return frozenset(
        track
        for track, attrs in enumerate(track_attrs or [])
        if attrs.get("occlusion") == HEAVY_OCCLUSION
    )


@dataclass(frozen=True)
class DatasetScore:
    """The clips' scores taken together: face-frames summed, the worst run over every clip."""

    clips: tuple[ClipScore, ...]

    @property
    def buckets(self) -> dict[str, BucketCount]:
        totals = {label: BucketCount() for label in VIDEO_REPORT_BUCKETS}
        for clip in self.clips:
            for label, count in clip.buckets.items():
                totals[label] = totals[label].merged(count)
        return totals

    def worst_run(self, *, without_heavily_occluded: bool = False) -> UnprotectedRun | None:
        runs = [
            run
            for clip in self.clips
            if (run := clip.worst_run(without_heavily_occluded=without_heavily_occluded))
        ]
        return max(runs, key=lambda run: run.frames, default=None)
