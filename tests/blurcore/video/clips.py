"""Test clips made on the spot from the public-domain astronaut: a camera moving over the portrait,
with the face's box known exactly in every frame, audio, identifying tags, and the variations
phones and cameras produce (display matrix, variable frame rate, 10 bit, several audio streams)."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.audio.stream
import av.video.stream
import cv2
import numpy as np
import numpy.typing as npt
import skimage.data

ASTRONAUT_FACE = (175.0, 55.0, 275.0, 175.0)  # x1, y1, x2, y2 in the 512x512 portrait
TAGS = {
    "title": "Pupils of class 4b",
    "comment": "recorded by Ms. Example",
    "location": "+31.2304+121.4737/",
    "creation_time": "2026-05-01T10:00:00Z",
    "make": "Apple",
    "model": "iPhone 15",
}
Box = tuple[float, float, float, float]
PAN_PERIOD = 60


@functools.cache
def _portrait() -> npt.NDArray[np.uint8]:
    return np.asarray(skimage.data.astronaut(), np.uint8)


@dataclass(frozen=True)
class AudioSpec:
    codec: str = "aac"
    rate: int = 48000
    layout: str = "mono"


@dataclass(frozen=True)
class ClipSpec:
    frames: int = 24
    size: tuple[int, int] = (480, 270)  # displayed width, height
    rate: int = 25
    times_ms: Sequence[int] | None = None
    """Each frame's timestamp in ms, for a variable frame rate; None: constant ``rate``."""
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    rotation: int = 0  # display matrix: counter-clockwise degrees a player turns stored frames
    keyframe_every: int | None = None
    """Frames from one keyframe to the next (scene cuts off); None: the encoder's choice."""
    bframes: int | None = None  # x264 only
    open_gop: bool = False  # x264 only: keyframes after the first are not IDR pictures
    audio: Sequence[AudioSpec] = (AudioSpec(),)
    tags: dict[str, str] = field(default_factory=lambda: dict(TAGS))


def camera(index: int, spec: ClipSpec) -> tuple[npt.NDArray[np.uint8], Box]:
    """Frame ``index`` (RGB, displayed orientation) and the face's box in it: a slow zoom in,
    and a pan to the right and back every ``PAN_PERIOD`` frames, over the portrait."""
    width, height = spec.size
    zoom = 1.0 + 0.2 * index / max(1, spec.frames - 1)
    phase = index % PAN_PERIOD
    left, top = 40.0 + 3.0 * min(phase, PAN_PERIOD - phase), 20.0
    portrait = _portrait()
    matrix = np.array([[zoom, 0, -left * zoom], [0, zoom, -top * zoom]], dtype=np.float64)
    frame = cv2.warpAffine(portrait, matrix, (width, height), flags=cv2.INTER_AREA)
    x1, y1, x2, y2 = ASTRONAUT_FACE
    face = ((x1 - left) * zoom, (y1 - top) * zoom, (x2 - left) * zoom, (y2 - top) * zoom)
    return np.asarray(frame, np.uint8), face


def _encoder_options(spec: ClipSpec) -> dict[str, str]:
    if spec.codec != "libx264":
        return {"g": str(spec.keyframe_every)} if spec.keyframe_every else {}
    x264 = []
    if spec.keyframe_every:
        x264 += [f"keyint={spec.keyframe_every}", f"min-keyint={spec.keyframe_every}", "scenecut=0"]
    if spec.bframes is not None:
        x264.append(f"bframes={spec.bframes}")
    if spec.open_gop:
        x264.append("open-gop=1")
    return {"x264-params": ":".join(x264)} if x264 else {}


def _time_base(spec: ClipSpec) -> Fraction:
    return Fraction(1, 1000) if spec.times_ms is not None else Fraction(1, spec.rate)


def make_clip(path: Path, spec: ClipSpec | None = None) -> list[Box]:
    """Write the clip; the face's box in each displayed frame."""
    spec = spec or ClipSpec()
    options = {"movflags": "use_metadata_tags"} if path.suffix in {".mp4", ".mov"} else {}
    faces = []
    with av.open(str(path), "w", options=options) as output:
        output.metadata.update(spec.tags)
        video = output.add_stream(spec.codec, rate=spec.rate, options=_encoder_options(spec))
        assert isinstance(video, av.video.stream.VideoStream)
        turned = spec.rotation in (90, 270)
        width, height = spec.size
        video.width, video.height = (height, width) if turned else (width, height)
        video.pix_fmt = spec.pix_fmt
        video.time_base = _time_base(spec)
        video.codec_context.time_base = _time_base(spec)
        if spec.rotation:
            video.set_display_rotation(spec.rotation)
        audio_streams = [_add_audio(output, audio) for audio in spec.audio]
        for index in range(spec.frames):
            pixels, face = camera(index, spec)
            faces.append(face)
            # The display matrix turns stored frames counter-clockwise; store them turned back.
            stored = np.ascontiguousarray(np.rot90(pixels, -(spec.rotation // 90)))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = spec.times_ms[index] if spec.times_ms is not None else index
            frame.time_base = _time_base(spec)
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        seconds = _seconds(spec)
        for stream, audio in zip(audio_streams, spec.audio, strict=True):
            _write_tone(output, stream, audio, seconds)
    return faces


def _seconds(spec: ClipSpec) -> float:
    if spec.times_ms is not None:
        return (spec.times_ms[-1] + 40) / 1000
    return spec.frames / spec.rate


def _add_audio(
    output: av.container.OutputContainer, spec: AudioSpec
) -> av.audio.stream.AudioStream:
    stream = output.add_stream(spec.codec, rate=spec.rate)
    assert isinstance(stream, av.audio.stream.AudioStream)
    stream.layout = spec.layout
    return stream


def _write_tone(
    output: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    spec: AudioSpec,
    seconds: float,
) -> None:
    """A quiet sweep, so every packet differs and a copy can be checked bit for bit."""
    channels = 1 if spec.layout == "mono" else 2
    samples = 1024
    total = int(seconds * spec.rate)
    for start in range(0, total, samples):
        t = np.arange(start, start + samples) / spec.rate
        tone = (0.05 * np.sin(2 * np.pi * (220 + 200 * t) * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone[None, :], channels, axis=0), format="fltp", layout=spec.layout
        )
        frame.sample_rate = spec.rate
        frame.pts = start
        output.mux(stream.encode(frame))
    output.mux(stream.encode(None))


def read_displayed(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Every frame as a player shows it (display matrix applied), RGB."""
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(container.streams.video[0]):
            pixels = frame.to_ndarray(format="rgb24")
            frames.append(np.ascontiguousarray(np.rot90(pixels, round(frame.rotation / 90) % 4)))
        return frames


def frame_pts(path: Path) -> list[Fraction]:
    """Every shown frame's timestamp, exact, in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return [frame.pts * stream.time_base for frame in container.decode(stream)]


def keyframe_pts(path: Path) -> list[int]:
    """The keyframes' timestamps, in the video stream's time base, in display order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(p.pts for p in container.demux(stream) if p.size and p.is_keyframe)


def decoding_times(path: Path) -> list[int | None]:
    """The video packets' decoding timestamps, in file order (None where the file keeps none)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p.dts for p in container.demux(stream) if p.size]


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [
            round(float(frame.time), 4)
            for frame in container.decode(container.streams.video[0])
            if frame.time is not None
        ]


def audio_packets(path: Path) -> list[list[bytes]]:
    """Per audio stream, in stream order, the bytes of each packet."""
    with av.open(str(path)) as container:
        streams = list(container.streams.audio)
        if not streams:
            return []
        packets: list[list[bytes]] = [[] for _ in streams]
        for packet in container.demux(*streams):
            if packet.size:
                packets[streams.index(packet.stream)].append(bytes(packet))
        return packets


def all_tags(path: Path) -> dict[str, str]:
    """Container and stream tags together, stream tags prefixed by their stream's index."""
    with av.open(str(path)) as container:
        tags = dict(container.metadata)
        for stream in container.streams:
            tags.update({f"{stream.index}:{key}": value for key, value in stream.metadata.items()})
        return tags
