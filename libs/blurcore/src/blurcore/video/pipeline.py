"""A video file in, the same video with every face anonymized in every frame out.

Two passes over the file, one frame in memory at a time, so memory does not grow with the clip:

1. decode and detect: only the face boxes of each frame are kept (a few dozen bytes a face);
2. track: boxes over the whole clip, forward and backward in time (:mod:`blurcore.video.tracking`);
3. decode again, anonymize each frame's tracked regions (padded like a photo's) and encode, with
   the audio packets copied as they come.

The output is written under a partial name and renamed when complete; any failure removes it, so
a video that cannot be anonymized completely leaves no output at all.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import numpy as np

from blurcore.anonymize import anonymize
from blurcore.boxes import Boxes, pad
from blurcore.errors import UnsupportedVideoError
from blurcore.hashing import file_sha256_hex
from blurcore.params import AnonymizeParams
from blurcore.pipeline import Anonymizer
from blurcore.video.probe import (
    VideoInfo,
    VideoLimits,
    describe,
    first_video_stream,
    open_container,
)
from blurcore.video.reader import ColourDescription, Picture, decode, pictures
from blurcore.video.tracking import Track, TrackingOptions, track_faces
from blurcore.video.writer import VideoWriter, muxer_for

Progress = Callable[[str, int, int], object]
"""Called with the stage ("detect" or "write"), frames done and frames expected (0: unknown)."""


class AudioPolicy(StrEnum):
    KEEP = "keep"
    MUTE = "mute"


@dataclass(frozen=True)
class VideoOptions:
    audio: AudioPolicy = AudioPolicy.KEEP
    limits: VideoLimits = field(default_factory=VideoLimits)
    tracking: TrackingOptions | None = None
    """None: :meth:`TrackingOptions.for_rate` of each clip's frame rate."""


@dataclass(frozen=True)
class Scan:
    """What the first pass and the tracker learn about a video: everything but its pixels."""

    info: VideoInfo
    width: int
    height: int
    """Displayed size: the stored frame turned by its display matrix."""
    times: list[float]
    detections: list[Boxes]
    regions: list[Boxes]
    """Per frame, exactly what is anonymized: the tracked face boxes, padded and clipped."""
    tracks: list[Track]
    colour: ColourDescription

    @property
    def frames(self) -> int:
        return len(self.times)

    @property
    def frames_per_second(self) -> float:
        return _rate(self.info, self.times)


@dataclass(frozen=True)
class VideoResult:
    scan: Scan
    input_sha256: str
    output_sha256: str

    def to_dict(self) -> dict[str, object]:
        """The report of one video: its timing, every track, and the regions per frame."""
        scan = self.scan
        rate = scan.frames_per_second
        return {
            "frames": scan.frames,
            "fps": round(rate, 3),
            "duration": round(_duration(scan), 3),
            "width": scan.width,
            "height": scan.height,
            "tracks": [
                {
                    "id": track.id,
                    "first_frame": track.first_frame,
                    "last_frame": track.last_frame,
                    "first_time": round(scan.times[track.first_frame], 3),
                    "last_time": round(scan.times[track.last_frame], 3),
                    "detected_frames": track.detected_frames,
                    "largest_box": [round(v, 1) for v in track.largest],
                    "mean_score": round(track.mean_score, 3),
                }
                for track in scan.tracks
            ],
            "faces_per_frame": [len(regions) for regions in scan.regions],
            "input_sha256": self.input_sha256,
            "output_sha256": self.output_sha256,
        }


def _duration(scan: Scan) -> float:
    if not scan.frames:
        return 0.0
    last_frame = 1.0 / scan.frames_per_second if scan.frames_per_second else 0.0
    return scan.times[-1] - scan.times[0] + last_frame


def _expected_frames(info: VideoInfo) -> int:
    if info.frames:
        return info.frames
    if info.average_rate and info.seconds:
        return round(info.seconds * float(info.average_rate))
    return 0


class VideoAnonymizer:
    """Runs the photo pipeline's detectors and anonymization over videos; reuse one per process."""

    def __init__(self, anonymizer: Anonymizer, options: VideoOptions | None = None) -> None:
        self.anonymizer = anonymizer
        self.options = options or VideoOptions()

    def scan(self, source: Path, params: AnonymizeParams, progress: Progress | None = None) -> Scan:
        """Detect faces in every frame and track them; the regions ``process`` would anonymize."""
        report = progress or (lambda _stage, _done, _total: None)
        with open_container(source) as container:
            info = describe(container, self.options.limits)
            expected = _expected_frames(info)
            times: list[float] = []
            detections: list[Boxes] = []
            first: Picture | None = None
            for picture in pictures(container, first_video_stream(container)):
                first = first or picture
                times.append(picture.time)
                detections.append(self.anonymizer.find_faces(picture.pixels, params))
                report("detect", len(times), expected)
        assert first is not None  # the reader raises on a video without a decodable frame
        height, width = first.pixels.shape[:2]
        tracking = track_faces(
            detections,
            width,
            height,
            self.options.tracking or TrackingOptions.for_rate(_rate(info, times)),
        )
        regions = [pad(boxes, params.padding, width, height) for boxes in tracking.regions]
        return Scan(
            info=info,
            width=width,
            height=height,
            times=times,
            detections=detections,
            regions=regions,
            tracks=tracking.tracks,
            colour=first.colour,
        )

    def process(
        self,
        source: Path,
        target: Path,
        params: AnonymizeParams,
        progress: Progress | None = None,
    ) -> VideoResult:
        """Write ``target`` (same kind of container as its suffix says) with every face of
        ``source`` anonymized; raises a :class:`blurcore.BlurcoreError` and writes nothing for a
        video it cannot read completely."""
        muxer = muxer_for(target)
        scan = self.scan(source, params, progress)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            self._write(source, partial, muxer, scan, params, progress)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return VideoResult(
            scan=scan,
            input_sha256=file_sha256_hex(source),
            output_sha256=file_sha256_hex(target),
        )

    def _write(
        self,
        source: Path,
        partial: Path,
        muxer: str,
        scan: Scan,
        params: AnonymizeParams,
        progress: Progress | None,
    ) -> None:
        report = progress or (lambda _stage, _done, _total: None)
        with open_container(source) as container:
            video = first_video_stream(container)
            audio = list(container.streams.audio) if self.options.audio is AudioPolicy.KEEP else []
            assert video.time_base is not None
            writer = VideoWriter(
                partial,
                muxer,
                (scan.width, scan.height),
                video.time_base,
                video.average_rate,
                scan.colour,
                audio,
                self.anonymizer.threads,
            )
            written = 0
            try:
                for item in decode(container, video, audio):
                    if not isinstance(item, Picture):
                        writer.copy_packet(item)
                        continue
                    if item.index >= scan.frames:
                        raise _changed(scan.frames)
                    pixels = anonymize(item.pixels, scan.regions[item.index], params)
                    writer.write_frame(np.asarray(pixels, np.uint8), _pts(item, video.time_base))
                    written += 1
                    report("write", written, scan.frames)
                if written != scan.frames:
                    raise _changed(scan.frames)
                writer.close()
            except BaseException:
                writer.abandon()
                raise


def _changed(expected: int) -> UnsupportedVideoError:
    return UnsupportedVideoError(f"the video changed while it was read ({expected} frames before)")


def _pts(picture: Picture, time_base: Fraction) -> int:
    if picture.pts is not None:
        return picture.pts
    return round(picture.time / time_base)


def _rate(info: VideoInfo, times: list[float]) -> float:
    """Frames per second: the container's average rate, else measured from the timestamps."""
    if info.average_rate:
        return float(info.average_rate)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span > 0 else 25.0
