"""Decode a segment's frames upright, one at a time, with their timestamps.

The reader knows nothing of faces. It hands out each frame as the BGR array the rest of the
library works on, turned by the display matrix a phone stores, so detection sees faces upright and
the output needs no matrix. A stream that decodes with errors part of the way through, or gives
fewer frames than its plan counted, raises: a partly anonymized video is never written.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import av
import av.container
import av.error
import av.video.frame
import av.video.stream
import numpy as np
import numpy.typing as npt

from blurcore.errors import UnsupportedVideoError
from blurcore.video.segments import Segment

BGRFrame = npt.NDArray[np.uint8]

# FFmpeg decoders hide damage by default (concealment); "explode" makes them report it instead,
# and a damaged frame ends the run rather than being anonymized from garbage.
_DECODER_OPTIONS = {"err_detect": "explode"}
_COLORSPACE_BT709, _COLORSPACE_BT2020_NCL, _COLORSPACE_BT2020_CL = 1, 9, 10
_RANGE_FULL = 2


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
    """Place in display order over the whole clip."""
    pts: int
    time: float
    pixels: BGRFrame
    colour: ColourDescription


def quarter_turns(frame: av.video.frame.VideoFrame) -> int:
    """Counter-clockwise quarter turns that show the frame as the display matrix asks."""
    return round(frame.rotation / 90) % 4


def to_picture(frame: av.video.frame.VideoFrame, index: int, pts: int) -> Picture:
    colour = ColourDescription.of(frame)
    stored = frame.to_ndarray(
        format="bgr24",
        src_colorspace=colour.matrix,
        src_color_range=2 if colour.full_range else 1,
    )
    upright = np.ascontiguousarray(np.rot90(stored, quarter_turns(frame)), dtype=np.uint8)
    time = float(pts * frame.time_base) if frame.time_base is not None else 0.0
    return Picture(index=index, pts=pts, time=time, pixels=upright, colour=colour)


def pictures(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    segment: Segment,
) -> Iterator[Picture]:
    """The frames of ``segment``, in display order, each with its index in the whole clip; raises
    unless they come out complete, clean, and as many as the plan counted."""
    try:
        yield from _segment_pictures(container, video, segment)
    except av.error.FFmpegError as error:
        raise UnsupportedVideoError(f"the video does not decode cleanly: {error}") from error


def _segment_pictures(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    segment: Segment,
) -> Iterator[Picture]:
    video.codec_context.options = _DECODER_OPTIONS
    warming_up = segment.decode_from_pts < segment.start_pts
    # Frame threads keep the decoding of every frame up with detection on any input, but they
    # report one frame's decoding error on the frames after it too; a segment that decodes a
    # GOP before its own only as references (and tolerates its errors) uses slice threads.
    video.thread_type = "SLICE" if warming_up else "AUTO"
    if segment.index:  # the first segment is read from the file's start, keyframe or not
        container.seek(segment.decode_from_pts, stream=video, backward=True)
    # AVI stores no presentation timestamps: FFmpeg numbers its packets in decoding order, and a
    # decoder that reorders frames (B-frames) hands them out with those numbers, out of order.
    # Frames come out in display order, so there the k-th frame takes the k-th smallest number
    # of the packets fed (the numbers the plan counted).
    restamped = container.format.name == "avi"
    numbers: list[int] = []
    produced = 0
    for packet in container.demux(video):
        # Shown before the keyframe decoding starts at: an earlier GOP where the seek landed
        # early, or an open GOP's leading pictures, which refer to the GOP before it.
        if packet.pts is not None and packet.pts < segment.decode_from_pts:
            continue
        if restamped and packet.pts is not None:
            heapq.heappush(numbers, packet.pts)
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            # A frame shown before the segment, decoded as a reference only, may refer to
            # frames decoding did not start early enough to see; the segment's own may not.
            if packet.pts is not None and packet.pts < segment.start_pts:
                continue
            raise
        for frame in frames:
            assert isinstance(frame, av.video.frame.VideoFrame)
            pts = heapq.heappop(numbers) if restamped and numbers else frame.pts
            if pts is None or not segment.holds(pts):
                continue
            if frame.is_corrupt:
                raise UnsupportedVideoError("the video does not decode cleanly: a corrupt frame")
            yield to_picture(frame, segment.first_frame + produced, pts)
            produced += 1
            if produced == segment.frames:
                return
    raise UnsupportedVideoError(
        f"segment {segment.index} decoded {produced} of its {segment.frames} frames"
    )
