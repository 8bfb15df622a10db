"""Decode a video's frames upright, one at a time, with their timestamps.

The reader knows nothing of faces. It hands out each frame as the BGR array the rest of the
library works on, turned by the display matrix a phone stores, so detection sees faces upright and
the output needs no matrix. A stream that decodes with errors part of the way through, or ends
before the frames its container declares, raises: a partly anonymized video is never written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import av
import av.audio.stream
import av.container
import av.error
import av.packet
import av.video.frame
import av.video.stream
import numpy as np
import numpy.typing as npt

from blurcore.errors import UnsupportedVideoError

BGRFrame = npt.NDArray[np.uint8]
if TYPE_CHECKING:  # PyAV's Packet is generic in its stubs only
    AudioPacket = av.packet.Packet[av.audio.stream.AudioStream]

# FFmpeg decoders hide damage by default (concealment); "explode" makes them report it instead,
# and a damaged frame ends the run rather than being anonymized from garbage.
_DECODER_OPTIONS = {"err_detect": "explode"}
_COLORSPACE_BT709, _COLORSPACE_BT2020_NCL, _COLORSPACE_BT2020_CL = 1, 9, 10
_RANGE_FULL = 2
# A file whose packets end this many frames before its header's duration was cut short.
_MISSING_FRAMES_TOLERATED = 2
_FALLBACK_RATE = 25.0


@dataclass(frozen=True)
class ColourDescription:
    """How the source's YUV samples map to colours; written back so playback looks the same."""

    matrix: int  # swscale's colour-space constant, for the conversion in both directions
    full_range: bool
    colorspace: int  # the frame's tags, copied to the output unchanged
    primaries: int
    transfer: int

    @classmethod
    def of(cls, frame: av.video.frame.VideoFrame) -> ColourDescription:
        if frame.colorspace == _COLORSPACE_BT709:
            matrix = 1
        elif frame.colorspace in (_COLORSPACE_BT2020_NCL, _COLORSPACE_BT2020_CL):
            matrix = 9
        else:
            matrix = 5  # BT.601, which is also what decoders assume for untagged video
        return cls(
            matrix=matrix,
            full_range=frame.color_range == _RANGE_FULL,
            colorspace=frame.colorspace,
            primaries=frame.color_primaries,
            transfer=frame.color_trc,
        )


@dataclass(frozen=True)
class Picture:
    """One decoded frame, in display order and orientation."""

    index: int
    pts: int | None
    time: float
    pixels: BGRFrame
    colour: ColourDescription


def quarter_turns(frame: av.video.frame.VideoFrame) -> int:
    """Counter-clockwise quarter turns that show the frame as the display matrix asks."""
    return round(frame.rotation / 90) % 4


def to_picture(frame: av.video.frame.VideoFrame, index: int) -> Picture:
    colour = ColourDescription.of(frame)
    stored = frame.to_ndarray(
        format="bgr24",
        src_colorspace=colour.matrix,
        src_color_range=2 if colour.full_range else 1,
    )
    upright = np.ascontiguousarray(np.rot90(stored, quarter_turns(frame)), dtype=np.uint8)
    time = float(frame.time) if frame.time is not None else 0.0
    return Picture(index=index, pts=frame.pts, time=time, pixels=upright, colour=colour)


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


def _declared_seconds(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    with_audio: bool,
) -> float | None:
    """What the header says the demuxed streams span: the video's own duration, or the whole
    file's when the audio is read too (a file's audio may outlast its video)."""
    if not with_audio and video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if with_audio and container.duration is not None:
        return container.duration / av.time_base
    return None


def _check_complete(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    with_audio: bool,
    frames: int,
    coverage: _Coverage,
) -> None:
    if frames == 0:
        raise UnsupportedVideoError("the video stream holds no frame that decodes")
    # AVI counts a placeholder packet of packed B-frames among its frames: one too many.
    if video.frames and frames < video.frames - 1:
        raise UnsupportedVideoError(f"the video is truncated: {frames} of {video.frames} frames")
    declared = _declared_seconds(container, video, with_audio)
    rate = float(video.average_rate) if video.average_rate else _FALLBACK_RATE
    if declared is not None and coverage.seconds < declared - _MISSING_FRAMES_TOLERATED / rate:
        raise UnsupportedVideoError(
            f"the video is truncated: it ends after {coverage.seconds:.2f} s of {declared:.2f} s"
        )


def _decoded(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    audio: Sequence[av.audio.stream.AudioStream],
) -> Iterator[Picture | AudioPacket]:
    video.codec_context.options = _DECODER_OPTIONS
    video.thread_type = "AUTO"  # frame threads: decoding keeps up with detection on any input
    index = 0
    coverage = _Coverage()
    for packet in container.demux(video, *audio):
        coverage.add(packet)
        if isinstance(packet.stream, av.audio.stream.AudioStream):
            if packet.dts is not None:  # the demuxer's empty flush packet carries none
                yield cast("AudioPacket", packet)
            continue
        for frame in packet.decode():
            assert isinstance(frame, av.video.frame.VideoFrame)
            if frame.is_corrupt:
                raise UnsupportedVideoError("the video does not decode cleanly: a corrupt frame")
            yield to_picture(frame, index)
            index += 1
    _check_complete(container, video, bool(audio), index, coverage)


def decode(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    audio: Sequence[av.audio.stream.AudioStream] = (),
) -> Iterator[Picture | AudioPacket]:
    """Every frame of ``video`` as a :class:`Picture`, with the packets of ``audio`` interleaved
    as the file stores them (so a writer can copy them without holding any back)."""
    try:
        yield from _decoded(container, video, audio)
    except av.error.FFmpegError as error:
        raise UnsupportedVideoError(f"the video does not decode cleanly: {error}") from error


def pictures(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> Iterator[Picture]:
    for item in decode(container, video):
        assert isinstance(item, Picture)
        yield item
