"""A video cut into segments at keyframes, so several workers can share one clip.

The plan is made from the container's packets alone, with no decoding: the video packets' timestamps
give the frame count and each frame's place in display order, their keyframe flags the places where
decoding can start. Each segment holds the frames whose timestamps lie in ``[start_pts, end_pts)``;
the first starts at the stream's first frame, each other at a keyframe about ``seconds`` after the
previous one's start.

Why segments need no overlap of detection for tracks to continue across a seam: a frame's boxes
depend only on its pixels and its index in the whole clip (the search cadence follows the global
index), so a segment's detections are those one worker would find for its frames; tracking, which
is cheap (boxes only), then runs once over the detections of all segments joined, as it does for one
worker, so a track crosses a seam as it crosses any other frame and no face flickers there. What
does overlap is decoding, never encoding: a segment decodes on past its end until it holds all its
frames (an open GOP's leading pictures are shown before the next keyframe but decoded after it),
and a segment whose keyframe opens such a GOP decodes from the keyframe before (see
:attr:`Segment.decode_from_pts`).

The pipeline of one clip, each step's inputs and outputs small JSON documents or files:
``plan_segments`` -> ``VideoAnonymizer.detect_segment`` per segment -> ``track_segments`` ->
``VideoAnonymizer.write_segment`` per segment -> ``join_segments``.
"""

from bisect import bisect_left
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.container
import av.error
import av.video.stream

from blurcore.errors import UnsupportedVideoError
from blurcore.video.probe import (
    VideoInfo,
    VideoLimits,
    VideoSource,
    describe,
    first_video_stream,
    open_container,
)

# A file whose packets end this many frames before its header's duration was cut short.
_MISSING_FRAMES_TOLERATED = 2
_FALLBACK_RATE = 25.0


@dataclass(frozen=True)
class Segment:
    index: int
    first_frame: int
    """Index, in display order over the whole clip, of the segment's first frame."""
    frames: int
    start_pts: int
    """Timestamp of the segment's first frame, in the video stream's time base."""
    end_pts: int | None
    """The next segment's ``start_pts``; None for the last segment."""
    decode_from_pts: int
    """The keyframe decoding starts at: ``start_pts``, or the keyframe before it when the
    segment's own opens a GOP that refers to the one before (an open GOP: x264's
    ``open-gop``, HEVC's CRA pictures), whose frames then serve only as references."""

    def holds(self, pts: int) -> bool:
        return pts >= self.start_pts and (self.end_pts is None or pts < self.end_pts)


@dataclass(frozen=True)
class SegmentPlan:
    info: VideoInfo
    time_base: Fraction
    """The video stream's time base: what the segments' timestamps count."""
    segments: tuple[Segment, ...]

    @property
    def frames(self) -> int:
        return sum(segment.frames for segment in self.segments)

    def to_dict(self) -> dict[str, object]:
        return {
            "info": self.info.to_dict(),
            "time_base": str(self.time_base),
            "segments": [vars(segment) for segment in self.segments],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SegmentPlan":
        return cls(
            info=VideoInfo.from_dict(data["info"]),
            time_base=Fraction(data["time_base"]),
            segments=tuple(Segment(**segment) for segment in data["segments"]),
        )


class _Coverage:
    """How much time the demuxed packets span, to tell a complete file from a cut one: a cut
    Matroska or MP4 file still opens, and its demuxer just ends early."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end = 0.0

    def add(self, packet: av.packet.Packet) -> None:  # type: ignore[type-arg]
        if packet.pts is None or packet.time_base is None:
            return
        start = float(packet.pts * packet.time_base)
        self.start = start if self.start is None else min(self.start, start)
        duration = packet.duration or 0
        self.end = max(self.end, float((packet.pts + duration) * packet.time_base))

    @property
    def seconds(self) -> float:
        return self.end - self.start if self.start is not None else 0.0


def _check_complete(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    frames: int,
    coverage: _Coverage,
) -> None:
    if frames == 0:
        raise UnsupportedVideoError("the video stream holds no frame")
    # AVI counts a placeholder packet of packed B-frames among its frames: one too many.
    if video.frames and frames < video.frames - 1:
        raise UnsupportedVideoError(f"the video is truncated: {frames} of {video.frames} frames")
    if container.duration is None:
        return
    declared = container.duration / av.time_base
    rate = float(video.average_rate) if video.average_rate else _FALLBACK_RATE
    if coverage.seconds < declared - _MISSING_FRAMES_TOLERATED / rate:
        raise UnsupportedVideoError(
            f"the video is truncated: it ends after {coverage.seconds:.2f} s of {declared:.2f} s"
        )


@dataclass
class _Timestamps:
    shown: list[int]
    """Every shown frame's timestamp, in decoding order."""
    keyframes: list[int]
    opening: set[int]
    """The keyframes followed by pictures shown before them (an open GOP's leading pictures)."""


def _frame_timestamps(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> _Timestamps:
    """The video packets' timestamps; the audio packets are read too, so a file whose sound is
    cut short is refused like one whose picture is."""
    found = _Timestamps(shown=[], keyframes=[], opening=set())
    coverage = _Coverage()
    try:
        for packet in container.demux(video, *container.streams.audio):
            coverage.add(packet)
            if packet.stream is not video or not packet.size or packet.is_discard:
                continue
            if packet.pts is None:
                raise UnsupportedVideoError("the video's frames carry no timestamps")
            found.shown.append(packet.pts)
            if packet.is_keyframe:
                found.keyframes.append(packet.pts)
            elif found.keyframes and packet.pts < found.keyframes[-1]:
                found.opening.add(found.keyframes[-1])
    except av.error.FFmpegError as error:
        raise UnsupportedVideoError(f"the video's packets do not read cleanly: {error}") from error
    _check_complete(container, video, len(found.shown), coverage)
    return found


def plan_segments(
    source: VideoSource, seconds: float, limits: VideoLimits | None = None
) -> SegmentPlan:
    """Segments of about ``seconds`` each (at least that long, but for the last), cut at
    keyframes; ``math.inf`` gives one segment. Checks the header against ``limits`` first."""
    if seconds <= 0:
        raise ValueError(f"a segment lasts a positive time, not {seconds}")
    with open_container(source) as container:
        info = describe(container, limits or VideoLimits())
        video = first_video_stream(container)
        assert video.time_base is not None
        found = _frame_timestamps(container, video)
    display = sorted(found.shown)
    keyframes = sorted(found.keyframes)
    starts = [display[0]]
    for keyframe in keyframes:
        if float((keyframe - starts[-1]) * video.time_base) >= seconds:
            starts.append(keyframe)
    firsts = [bisect_left(display, start) for start in starts] + [len(display)]
    segments = tuple(
        Segment(
            index=index,
            first_frame=firsts[index],
            frames=firsts[index + 1] - firsts[index],
            start_pts=start,
            end_pts=starts[index + 1] if index + 1 < len(starts) else None,
            decode_from_pts=_decoding_start(start, keyframes, found.opening, display[0]),
        )
        for index, start in enumerate(starts)
    )
    return SegmentPlan(info=info, time_base=video.time_base, segments=segments)


def _decoding_start(start: int, keyframes: list[int], opening: set[int], first: int) -> int:
    if start not in opening:
        return start
    earlier = bisect_left(keyframes, start)
    return keyframes[earlier - 1] if earlier else first
