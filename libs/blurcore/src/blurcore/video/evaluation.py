"""Run an anonymizer over the annotated clips of a video set and score it by the set's protocol.

The set is laid out as ``../shared/data/faces/video``: ``annotations_video.json`` holds, per clip,
its file, frame rate, displayed size and one ground-truth entry per frame in display order (see
that folder's README). Any tool can be scored: the caller passes ``anonymize(source, target)``,
which writes ``target`` in the same container and must paint faces black.

Both files are decoded by OpenCV's FFmpeg backend, which applies the display rotation, one frame
at a time, so memory does not grow with a clip. The output is brought back to the original's
geometry before scoring, and every difference is reported: a changed frame count (frames are then
paired by time), a changed size (resized back) and a lost rotation (turned back).
"""

import json
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import cv2
import numpy as np

from blurcore.params import AnonymizeParams, Mode
from blurcore.video.scoring import (
    VIDEO_REPORT_BUCKETS,
    VIDEO_SIZE_BUCKETS,
    BucketCount,
    ClipScore,
    ClipScorer,
    DatasetScore,
    Frame,
    FrameTruth,
    UnprotectedRun,
    heavily_occluded,
)

if TYPE_CHECKING:
    from blurcore.pipeline import Anonymizer

ANNOTATIONS_FILE = "annotations_video.json"
TRACKED_TAGS: tuple[str, ...] = ("location", "title", "comment", "creation_time")
REAL_TIME_FPS = 25.0
# An output frame that starts this share of an original frame after a moment still counts as shown
# at that moment: container timestamps are rounded, and exact equality would pair by chance.
_TIME_SLACK_FRAMES = 0.25

Anonymize = Callable[[Path, Path], None]
"""Writes ``target`` (second argument) from ``source``, faces painted black."""


@dataclass(frozen=True)
class VideoClip:
    path: Path
    motion: str
    fps: float
    width: int
    height: int
    """Displayed size, the geometry of every box."""
    frames: tuple[FrameTruth, ...]
    heavily_occluded_tracks: frozenset[int]

    @property
    def name(self) -> str:
        return self.path.name


def load_clips(dataset: Path, names: Collection[str] | None = None) -> list[VideoClip]:
    """The clips of ``dataset``, or those whose file name starts with one of ``names``.

    Raises FileNotFoundError without ``annotations_video.json``, ValueError for a name that
    selects no clip.
    """
    annotations = dataset / ANNOTATIONS_FILE
    if not annotations.is_file():
        raise FileNotFoundError(f"{dataset} holds no {ANNOTATIONS_FILE}")
    entries: list[dict[str, Any]] = json.loads(annotations.read_text())["clips"]
    clips = [_clip(dataset, entry) for entry in entries]
    if names is None:
        return clips
    unknown = [name for name in names if not any(c.name.startswith(name) for c in clips)]
    if unknown:
        raise ValueError(f"no clip of {dataset} is named {', '.join(unknown)}")
    return [clip for clip in clips if any(clip.name.startswith(name) for name in names)]


def _clip(dataset: Path, entry: dict[str, Any]) -> VideoClip:
    return VideoClip(
        path=dataset / entry["file"],
        motion=entry.get("motion", ""),
        fps=float(entry["fps"]),
        width=int(entry["width"]),
        height=int(entry["height"]),
        frames=tuple(FrameTruth.from_json(frame) for frame in entry["frames_gt"]),
        heavily_occluded_tracks=heavily_occluded(entry.get("track_attrs")),
    )


# Decoding and pairing


@dataclass(frozen=True)
class DecodedFrame:
    seconds: float
    """Since the file's first frame, so that a shifted start time does not offset every pair."""
    pixels: Frame


def decoded_frames(path: Path) -> Iterator[DecodedFrame]:
    """Every frame of the file in display order and orientation, as OpenCV's FFmpeg backend
    decodes it (BGR)."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise ValueError(f"OpenCV cannot open {path}")
    try:
        first_ms: float | None = None
        while True:
            ok, pixels = capture.read()
            if not ok:
                return
            position_ms = float(capture.get(cv2.CAP_PROP_POS_MSEC))
            first_ms = position_ms if first_ms is None else first_ms
            yield DecodedFrame((position_ms - first_ms) / 1000.0, np.asarray(pixels, np.uint8))
    finally:
        capture.release()


class ShownFrames:
    """The output frame on screen at a given moment: the last one that started by then.

    Reads the output once, ahead of the moments asked for, which must not decrease; holds two
    frames at most.
    """

    def __init__(self, frames: Iterator[DecodedFrame], slack_seconds: float) -> None:
        self._frames = frames
        self._slack = slack_seconds
        self._current: DecodedFrame | None = None
        self._following = next(frames, None)
        self._period: float | None = None
        self.decoded = 0 if self._following is None else 1

    def at(self, seconds: float) -> Frame | None:
        """None before the first output frame and after the last one has ended."""
        while self._following is not None and self._following.seconds <= seconds + self._slack:
            if self._current is not None:
                self._period = self._following.seconds - self._current.seconds
            self._current = self._following
            self._following = self._advance()
        if self._current is None:
            return None
        # The last frame stays on screen for one of the output's frame periods, then none is.
        ended = (
            self._following is None
            and self._period is not None
            and seconds + self._slack >= self._current.seconds + self._period
        )
        if ended:
            return None
        return self._current.pixels

    def count_all(self) -> int:
        """Decodes what is left, and returns how many frames the output holds."""
        while self._advance() is not None:
            pass
        return self.decoded

    def _advance(self) -> DecodedFrame | None:
        frame = next(self._frames, None)
        self.decoded += frame is not None
        return frame


@dataclass(frozen=True)
class Alignment:
    """How an output frame is brought back to the original's displayed geometry."""

    rotate_code: int | None
    """A ``cv2.ROTATE_*`` code when the output came out transposed (a lost display rotation)."""
    size: tuple[int, int]
    """The original's width and height, to which the output is resized if it differs."""

    def apply(self, output: Frame) -> Frame:
        turned = output if self.rotate_code is None else cv2.rotate(output, self.rotate_code)
        if turned.shape[1::-1] == self.size:
            return np.asarray(turned, np.uint8)
        return np.asarray(cv2.resize(turned, self.size, interpolation=cv2.INTER_AREA), np.uint8)


def choose_alignment(original: Frame, output: Frame) -> Alignment:
    """An output whose orientation (landscape or portrait) differs from the original's was written
    without its display rotation; of the two quarter turns, the one that matches the original's
    picture better brings it back."""
    height, width = original.shape[:2]
    out_height, out_width = output.shape[:2]
    size = (width, height)
    transposed = out_width != out_height and (out_width > out_height) != (width > height)
    if not transposed:
        return Alignment(None, size)
    candidates = [
        Alignment(code, size) for code in (cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_90_CLOCKWISE)
    ]
    return min(candidates, key=lambda c: _mean_difference(c.apply(output), original))


def _mean_difference(first: Frame, second: Frame) -> float:
    return float(np.mean(np.abs(first.astype(np.int16) - second.astype(np.int16))))


# Container facts


@dataclass(frozen=True)
class ContainerFacts:
    has_audio: bool
    tags: dict[str, frozenset[str]]
    """Values of :data:`TRACKED_TAGS` in the container's and every stream's metadata."""


def container_facts(path: Path) -> ContainerFacts:
    """Whether the file carries audio, and its identifying tags wherever they are stored (MP4
    keeps ``creation_time`` on every stream, and ``location`` also as ``location-eng``)."""
    with av.open(str(path)) as container:
        metadata = [container.metadata, *(stream.metadata for stream in container.streams)]
        has_audio = len(container.streams.audio) > 0
    tags: dict[str, set[str]] = {}
    for entries in metadata:
        for key, value in entries.items():
            name = key.split("-")[0].lower()
            if name in TRACKED_TAGS:
                tags.setdefault(name, set()).add(value)
    return ContainerFacts(has_audio, {name: frozenset(values) for name, values in tags.items()})


def surviving_tags(original: ContainerFacts, output: ContainerFacts) -> tuple[str, ...]:
    """Tracked tags whose original value is still in the output; a new value (a fresh
    ``creation_time``) tells nothing about the recording, so it is not counted."""
    return tuple(
        name
        for name in TRACKED_TAGS
        if original.tags.get(name, frozenset()) & output.tags.get(name, frozenset())
    )


# One clip


@dataclass(frozen=True)
class ClipEvaluation:
    clip: str
    motion: str
    score: ClipScore
    wall_seconds: float
    annotated_frames: int
    output_frames: int
    output_size: tuple[int, int]
    """Width and height as decoded, before any turn or resize back."""
    original_size: tuple[int, int]
    transposed: bool
    unpaired_frames: int
    """Annotated frames with no output frame on screen at their time; not scored."""
    audio_in: bool
    audio_out: bool
    tags_in: tuple[str, ...]
    tags_survived: tuple[str, ...]

    @property
    def frames_per_second(self) -> float:
        return self.annotated_frames / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def frame_count_changed(self) -> bool:
        return self.output_frames != self.annotated_frames

    @property
    def size_changed(self) -> bool:
        width, height = self.output_size
        upright = (height, width) if self.transposed else (width, height)
        return upright != self.original_size

    @property
    def audio_kept(self) -> bool:
        return self.audio_out or not self.audio_in

    def to_dict(self) -> dict[str, object]:
        return {
            "clip": self.clip,
            "motion": self.motion,
            "wall_seconds": round(self.wall_seconds, 3),
            "frames_per_second": round(self.frames_per_second, 3),
            "annotated_frames": self.annotated_frames,
            "frames_scored": self.score.frames_scored,
            "output_frames": self.output_frames,
            "frame_count_changed": self.frame_count_changed,
            "unpaired_frames": self.unpaired_frames,
            "output_size": list(self.output_size),
            "size_changed": self.size_changed,
            "transposed": self.transposed,
            "audio_in": self.audio_in,
            "audio_out": self.audio_out,
            "tags_in": list(self.tags_in),
            "tags_survived": list(self.tags_survived),
            "buckets": _buckets_to_dict(self.score.buckets),
            "tracks_ge32": {
                str(track): {
                    "longest_unprotected_run": runs.longest_unprotected_run,
                    "unprotected_frames": runs.unprotected_frames,
                    "scored_frames": runs.scored_frames,
                    "heavily_occluded": track in self.score.heavily_occluded_tracks,
                }
                for track, runs in sorted(self.score.tracks.items())
            },
            "worst_run": _run_to_dict(self.score.worst_run()),
            "worst_run_not_heavily_occluded": _run_to_dict(
                self.score.worst_run(without_heavily_occluded=True)
            ),
            "anonymized_elsewhere": round(self.score.anonymized_elsewhere, 5),
        }


def score_output(clip: VideoClip, output: Path, wall_seconds: float) -> ClipEvaluation:
    """Score an output already written for ``clip``, which took ``wall_seconds`` to make."""
    scorer = ClipScorer(clip.name, clip.fps, clip.heavily_occluded_tracks)
    shown = ShownFrames(decoded_frames(output), _TIME_SLACK_FRAMES / clip.fps)
    alignment: Alignment | None = None
    output_size = (0, 0)
    unpaired = 0
    decoded_originals = 0
    originals = decoded_frames(clip.path)
    for index, (original, truth) in enumerate(zip(originals, clip.frames, strict=False)):
        decoded_originals += 1
        if original.pixels.shape[1::-1] != (clip.width, clip.height):
            raise ValueError(
                f"{clip.name} decodes as {original.pixels.shape[1::-1]}, "
                f"annotated as {(clip.width, clip.height)}"
            )
        pixels = shown.at(original.seconds)
        if pixels is None:
            unpaired += 1
            continue
        if alignment is None:
            output_size = (pixels.shape[1], pixels.shape[0])
            alignment = choose_alignment(original.pixels, pixels)
        scorer.add_frame(index, original.pixels, alignment.apply(pixels), truth)
    if decoded_originals < len(clip.frames):
        raise ValueError(
            f"{clip.name}: {len(clip.frames)} frames annotated, {decoded_originals} decoded"
        )
    before, after = container_facts(clip.path), container_facts(output)
    return ClipEvaluation(
        clip=clip.name,
        motion=clip.motion,
        score=scorer.result(),
        wall_seconds=wall_seconds,
        annotated_frames=len(clip.frames),
        output_frames=shown.count_all(),
        output_size=output_size,
        original_size=(clip.width, clip.height),
        transposed=alignment is not None and alignment.rotate_code is not None,
        unpaired_frames=unpaired,
        audio_in=before.has_audio,
        audio_out=after.has_audio,
        tags_in=tuple(name for name in TRACKED_TAGS if name in before.tags),
        tags_survived=surviving_tags(before, after),
    )


# Every clip


@dataclass(frozen=True)
class VideoEvaluation:
    clips: tuple[ClipEvaluation, ...]

    @property
    def score(self) -> DatasetScore:
        return DatasetScore(tuple(clip.score for clip in self.clips))

    @property
    def annotated_frames(self) -> int:
        return sum(clip.annotated_frames for clip in self.clips)

    @property
    def wall_seconds(self) -> float:
        return sum(clip.wall_seconds for clip in self.clips)

    @property
    def frames_per_second(self) -> float:
        """Annotated frames over wall seconds, every clip's start-up included."""
        return self.annotated_frames / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def audio_kept_everywhere(self) -> bool:
        return all(clip.audio_kept for clip in self.clips)

    @property
    def tags_survived(self) -> tuple[str, ...]:
        """Tracked tags that survived in at least one clip."""
        return tuple(
            name for name in TRACKED_TAGS if any(name in c.tags_survived for c in self.clips)
        )

    def to_dict(self) -> dict[str, object]:
        score = self.score
        return {
            "clips": len(self.clips),
            "annotated_frames": self.annotated_frames,
            "wall_seconds": round(self.wall_seconds, 3),
            "frames_per_second": round(self.frames_per_second, 3),
            "buckets": _buckets_to_dict(score.buckets),
            "worst_run": _run_to_dict(score.worst_run()),
            "worst_run_not_heavily_occluded": _run_to_dict(
                score.worst_run(without_heavily_occluded=True)
            ),
            "audio_kept_everywhere": self.audio_kept_everywhere,
            "tags_survived": list(self.tags_survived),
            "per_clip": [clip.to_dict() for clip in self.clips],
        }


def evaluate_video_clips(
    clips: Sequence[VideoClip],
    anonymize: Anonymize,
    progress: Callable[[VideoClip], object] = lambda _clip: None,
) -> VideoEvaluation:
    """Run ``anonymize`` on every clip (``progress`` is told as each starts) and score it.

    The time counted is the whole call, start-up included, as a user waits for it. Each output is
    written to a temporary folder and deleted once scored.
    """
    evaluated = []
    with tempfile.TemporaryDirectory(prefix="video-eval-") as scratch:
        for clip in clips:
            progress(clip)
            output = Path(scratch) / clip.name
            started = time.perf_counter()
            anonymize(clip.path, output)
            wall_seconds = time.perf_counter() - started
            evaluated.append(score_output(clip, output, wall_seconds))
            output.unlink()
    return VideoEvaluation(tuple(evaluated))


def evaluate_video_dataset(
    dataset: Path,
    anonymizer: "Anonymizer",
    params: AnonymizeParams,
    progress: Callable[[VideoClip], object] = lambda _clip: None,
    clip_names: Collection[str] | None = None,
) -> VideoEvaluation:
    """blurcore's video pipeline over the set's clips, with ``params`` in fill mode (black)."""
    # Imported here so that scoring another tool's output needs none of blurcore's video pipeline.
    from blurcore.video.pipeline import VideoAnonymizer

    video = VideoAnonymizer(anonymizer)
    fill = params.model_copy(update={"mode": Mode.FILL})

    def anonymize(source: Path, target: Path) -> None:
        video.process(source, target, fill)

    return evaluate_video_clips(load_clips(dataset, clip_names), anonymize, progress)


# Reports


def _buckets_to_dict(buckets: dict[str, BucketCount]) -> dict[str, object]:
    return {
        label: {
            "face_frames": count.face_frames,
            "protected": count.protected,
            "unmeasurable": count.unmeasurable,
            "protected_share": count.protected_share,
        }
        for label, count in buckets.items()
    }


def _run_to_dict(run: UnprotectedRun | None) -> dict[str, object] | None:
    if run is None:
        return None
    return {
        "clip": run.clip,
        "track": run.track,
        "frames": run.frames,
        "seconds": round(run.seconds, 3),
    }


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def describe_run(run: UnprotectedRun | None, *, with_clip: bool = False) -> str:
    if run is None:
        return "-"
    if run.frames == 0:
        return "0"
    where = f"{run.clip} " if with_clip else ""
    return f"{run.frames} ({where}track {run.track})"


def format_video_report(evaluation: VideoEvaluation) -> str:
    """Markdown tables: protected share per size bucket and the worst unprotected run per clip,
    then what each output kept of the original's container, frames and geometry."""
    quality_header = [
        "clip",
        *VIDEO_REPORT_BUCKETS,
        "worst unprotected run (>= 32 px)",
        "without heavily occluded tracks",
        "frames/s",
    ]
    quality_rows = [
        [
            f"{clip.clip} ({clip.motion})",
            *(share(clip.score.buckets[label].protected_share) for label in VIDEO_REPORT_BUCKETS),
            describe_run(clip.score.worst_run()),
            describe_run(clip.score.worst_run(without_heavily_occluded=True)),
            f"{clip.frames_per_second:.2f}",
        ]
        for clip in evaluation.clips
    ]
    totals = evaluation.score
    quality_rows.append(
        [
            "**all (face-frames)**",
            *(
                f"{share(totals.buckets[label].protected_share)} "
                f"({totals.buckets[label].face_frames})"
                for label in VIDEO_REPORT_BUCKETS
            ),
            describe_run(totals.worst_run(), with_clip=True),
            describe_run(totals.worst_run(without_heavily_occluded=True), with_clip=True),
            f"{evaluation.frames_per_second:.2f}",
        ]
    )
    output_header = [
        "clip",
        "frames in / out",
        "unpaired",
        "size out",
        "turned back",
        "audio kept",
        "tags survived",
        "unmeasurable face-frames",
        "anonymized outside the boxes",
    ]
    output_rows = [
        [
            clip.clip,
            f"{clip.annotated_frames} / {clip.output_frames}",
            str(clip.unpaired_frames),
            f"{clip.output_size[0]}x{clip.output_size[1]}"
            + (" (resized back)" if clip.size_changed else ""),
            "yes" if clip.transposed else "no",
            "yes" if clip.audio_kept else "**no**",
            ", ".join(clip.tags_survived) or "none",
            str(sum(clip.score.buckets[label].unmeasurable for label in VIDEO_SIZE_BUCKETS)),
            f"{clip.score.anonymized_elsewhere:.2%}",
        ]
        for clip in evaluation.clips
    ]
    return "\n".join(
        [
            *_markdown_table(quality_header, quality_rows),
            "",
            *_markdown_table(output_header, output_rows),
        ]
    )


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows)]
