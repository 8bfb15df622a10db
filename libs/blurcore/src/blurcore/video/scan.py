"""What detection and tracking learn about a video, everything but its pixels, as JSON documents.

A segment's detections (:class:`SegmentDetections`) and a whole clip's scan (:class:`Scan`) travel
between workers, so both round-trip through JSON exactly: boxes as one base64 string of their
float32 values and a count per frame, which keeps a 10-minute clip's scan to about 30 bytes a face
and 10 a frame.
"""

import base64
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from blurcore.boxes import Boxes, clip, grow
from blurcore.errors import UnsupportedVideoError
from blurcore.params import AnonymizeParams
from blurcore.video.probe import VideoInfo
from blurcore.video.reader import ColourDescription
from blurcore.video.segments import SegmentPlan
from blurcore.video.tracking import Track, TrackingOptions, track_faces

_BOX_VALUES = 5
_FALLBACK_RATE = 25.0


def boxes_to_dict(frames: Sequence[Boxes]) -> dict[str, object]:
    """Per-frame boxes as ``{"counts": [...], "float32": base64}``, exact and compact."""
    values = np.concatenate([*frames, np.zeros((0, _BOX_VALUES), np.float32)]).astype("<f4")
    return {
        "counts": [len(boxes) for boxes in frames],
        "float32": base64.b64encode(values.tobytes()).decode("ascii"),
    }


def boxes_from_dict(data: dict[str, Any]) -> list[Boxes]:
    values = np.frombuffer(base64.b64decode(data["float32"]), "<f4").reshape(-1, _BOX_VALUES)
    ends = np.cumsum(data["counts"])
    if len(values) != (ends[-1] if len(ends) else 0):
        raise ValueError("the box counts do not match the boxes")
    return [
        values[end - count : end].astype(np.float32)
        for count, end in zip(data["counts"], ends, strict=True)
    ]


@dataclass(frozen=True)
class SegmentDetections:
    """What one segment's frames hold: the faces found in each, and the boxes too unsure to be a
    face on their own (they may continue a track)."""

    segment: int
    first_frame: int
    width: int
    height: int
    """Displayed size of the frames."""
    colour: ColourDescription
    times: list[float]
    faces: list[Boxes]
    weak: list[Boxes]

    def to_dict(self) -> dict[str, object]:
        return {
            "segment": self.segment,
            "first_frame": self.first_frame,
            "width": self.width,
            "height": self.height,
            "colour": asdict(self.colour),
            "times": self.times,
            "faces": boxes_to_dict(self.faces),
            "weak": boxes_to_dict(self.weak),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SegmentDetections":
        return cls(
            segment=data["segment"],
            first_frame=data["first_frame"],
            width=data["width"],
            height=data["height"],
            colour=ColourDescription(**data["colour"]),
            times=list(data["times"]),
            faces=boxes_from_dict(data["faces"]),
            weak=boxes_from_dict(data["weak"]),
        )


@dataclass(frozen=True)
class Scan:
    """What the first pass and the tracker learn about a video: everything but its pixels."""

    info: VideoInfo
    width: int
    height: int
    """Displayed size: the stored frame turned by its display matrix."""
    times: list[float]
    detections: list[Boxes]
    outlines: list[Boxes]
    """Per frame, the tracked face boxes padded: their shapes, cut at the frame's edge, are
    what is anonymized."""
    tracks: list[Track]
    colour: ColourDescription

    @property
    def regions(self) -> list[Boxes]:
        """Per frame, the outlines clipped to the frame: where anonymization happens."""
        return [clip(boxes, self.width, self.height) for boxes in self.outlines]

    @property
    def frames(self) -> int:
        return len(self.times)

    @property
    def frames_per_second(self) -> float:
        return frame_rate(self.info, self.times)

    def to_dict(self) -> dict[str, object]:
        return {
            "info": self.info.to_dict(),
            "width": self.width,
            "height": self.height,
            "times": self.times,
            "detections": boxes_to_dict(self.detections),
            "outlines": boxes_to_dict(self.outlines),
            "tracks": [asdict(track) for track in self.tracks],
            "colour": asdict(self.colour),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scan":
        return cls(
            info=VideoInfo.from_dict(data["info"]),
            width=data["width"],
            height=data["height"],
            times=list(data["times"]),
            detections=boxes_from_dict(data["detections"]),
            outlines=boxes_from_dict(data["outlines"]),
            tracks=[
                Track(**{**track, "largest": tuple(track["largest"])}) for track in data["tracks"]
            ],
            colour=ColourDescription(**data["colour"]),
        )


def frame_rate(info: VideoInfo, times: Sequence[float]) -> float:
    """Frames per second: the container's average rate, else measured from the timestamps."""
    if info.average_rate:
        return float(info.average_rate)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span > 0 else _FALLBACK_RATE


def _in_order(plan: SegmentPlan, detected: Sequence[SegmentDetections]) -> list[SegmentDetections]:
    """The segments' detections by segment, checked against the plan: every segment once, each
    with the frames it was planned to hold."""
    by_segment = {part.segment: part for part in detected}
    missing = [s.index for s in plan.segments if s.index not in by_segment]
    if missing or len(detected) != len(plan.segments):
        raise UnsupportedVideoError(
            f"detections of {len(detected)} segments for a plan of {len(plan.segments)}"
            + (f"; segments {missing} missing" if missing else "")
        )
    for segment in plan.segments:
        part = by_segment[segment.index]
        if (part.first_frame, len(part.times)) != (segment.first_frame, segment.frames):
            raise UnsupportedVideoError(
                f"segment {segment.index} detected {len(part.times)} frames from frame "
                f"{part.first_frame}; the plan has {segment.frames} from {segment.first_frame}"
            )
    return [by_segment[segment.index] for segment in plan.segments]


def track_segments(
    plan: SegmentPlan,
    detected: Sequence[SegmentDetections],
    params: AnonymizeParams,
    tracking: TrackingOptions | None = None,
) -> Scan:
    """The whole clip's scan from every segment's detections: faces tracked over all frames at
    once, so a track runs through a seam as through any other frame. ``tracking`` None:
    :meth:`TrackingOptions.for_rate` of the clip's frame rate."""
    parts = _in_order(plan, detected)
    first = parts[0]
    times = [time for part in parts for time in part.times]
    faces = [boxes for part in parts for boxes in part.faces]
    weak = [boxes for part in parts for boxes in part.weak]
    options = tracking or TrackingOptions.for_rate(frame_rate(plan.info, times))
    tracked = track_faces(faces, first.width, first.height, options, weak)
    return Scan(
        info=plan.info,
        width=first.width,
        height=first.height,
        times=times,
        detections=faces,
        outlines=[grow(boxes, params.padding) for boxes in tracked.regions],
        tracks=tracked.tracks,
        colour=first.colour,
    )
