"""What a video file holds, read from its container header before any frame is decoded.

Limits are checked here, on what the header declares (frame size, duration), so a file that is too
large or not a video at all is refused before a decoder spends memory or time on it.
"""

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import av.container
import av.error
import av.stream
import av.video.stream

from blurcore.errors import UnsupportedVideoError, VideoTooLargeError
from blurcore.video.containers import VIDEO_SUFFIXES

# An 8K UHD frame; larger frames are no recording a person makes, and each costs 100 MB as BGR.
DEFAULT_MAX_FRAME_PIXELS = 7680 * 4320
DEFAULT_MAX_SECONDS = 4 * 3600.0

VideoSource = Path | BinaryIO
"""A video's path, or a seekable binary file object over its bytes (a blob store's reader, so an
original is never written to disk in plain). A file object is read from its start at every
opening, and left open: its owner closes it."""


@dataclass(frozen=True)
class VideoLimits:
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    max_seconds: float = DEFAULT_MAX_SECONDS


@dataclass(frozen=True)
class VideoInfo:
    container: str
    """Demuxer name, e.g. ``mov,mp4,m4a,3gp,3g2,mj2`` or ``matroska,webm``."""
    codec: str
    coded_width: int
    coded_height: int
    frames: int
    """Frame count the container declares; 0 where it declares none (Matroska, WebM)."""
    seconds: float
    """Duration the container declares; 0.0 where it declares none."""
    average_rate: Fraction | None
    audio_streams: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the rate as the string ``"num/den"`` (exact), or None."""
        fields = dict(vars(self))
        fields["average_rate"] = None if self.average_rate is None else str(self.average_rate)
        return fields

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VideoInfo":
        rate = data["average_rate"]
        return cls(**{**data, "average_rate": None if rate is None else Fraction(rate)})


def open_container(source: VideoSource) -> av.container.InputContainer:
    """Open ``source`` for reading, turning FFmpeg's many errors into one with a clear reason."""
    try:
        if isinstance(source, Path):
            return av.open(str(source), mode="r", metadata_errors="ignore")
        source.seek(0)
        return av.open(source, mode="r", metadata_errors="ignore")
    except FileNotFoundError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise UnsupportedVideoError(f"not a readable video: {error}") from error


def first_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise UnsupportedVideoError("the file holds no video stream")
    return container.streams.video[0]


def _declared_seconds(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def describe(container: av.container.InputContainer, limits: VideoLimits) -> VideoInfo:
    """The header's facts about ``container``; raises if it breaks a limit or has no video."""
    stream = first_video_stream(container)
    context = stream.codec_context
    width, height = context.width, context.height
    if width <= 0 or height <= 0:
        raise UnsupportedVideoError("the video stream declares no frame size")
    if width * height > limits.max_frame_pixels:
        raise VideoTooLargeError(
            f"frames of {width}x{height} exceed the limit of {limits.max_frame_pixels} pixels"
        )
    seconds = _declared_seconds(container, stream)
    if seconds > limits.max_seconds:
        raise VideoTooLargeError(
            f"the video lasts {seconds:.0f} s, over the limit of {limits.max_seconds:.0f} s"
        )
    return VideoInfo(
        container=container.format.name,
        codec=context.name,
        coded_width=width,
        coded_height=height,
        frames=stream.frames,
        seconds=seconds,
        average_rate=stream.average_rate,
        audio_streams=len(container.streams.audio),
    )


def probe(source: VideoSource, limits: VideoLimits | None = None) -> VideoInfo:
    with open_container(source) as container:
        return describe(container, limits or VideoLimits())


def looks_like_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES
