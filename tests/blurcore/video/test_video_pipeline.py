"""Videos through the real pipeline: real models, real encoders, clips made in the test."""

import hashlib
import io
import math
from pathlib import Path

import av
import numpy as np
import pytest

from blurcore.errors import UnsupportedVideoError, VideoTooLargeError
from blurcore.hashing import file_sha256_hex
from blurcore.params import AnonymizeParams, Mode, Profile
from blurcore.pipeline import Anonymizer
from blurcore.video.pipeline import AudioPolicy, VideoAnonymizer, VideoOptions
from blurcore.video.probe import VideoLimits, first_video_stream, open_container, probe
from blurcore.video.reader import Picture, pictures
from blurcore.video.segments import plan_segments
from tests.blurcore.video.clips import (
    TAGS,
    AudioSpec,
    Box,
    ClipSpec,
    all_tags,
    audio_packets,
    frame_times,
    make_clip,
    read_displayed,
)

FILL = AnonymizeParams(profile=Profile.FAST, mode=Mode.FILL)
# Re-encoding at CRF 18 moves an untouched pixel by a level or two; anonymizing moves it by tens.
UNTOUCHED_MEAN_DIFFERENCE = 3.0
VFR_TIMES_MS = [0, 40, 60, 140, 150, 200, 280, 300, 340, 400, 433, 480, 520, 600, 640, 700]


@pytest.fixture(scope="module")
def videos(anonymizer: Anonymizer) -> VideoAnonymizer:
    return VideoAnonymizer(anonymizer)


def _inner(face: Box, fraction: float = 0.5) -> tuple[slice, slice]:
    """The central part of a face box, as row and column slices."""
    x1, y1, x2, y2 = face
    dx, dy = (x2 - x1) * (1 - fraction) / 2, (y2 - y1) * (1 - fraction) / 2
    return slice(round(y1 + dy), round(y2 - dy)), slice(round(x1 + dx), round(x2 - dx))


def _far_from(face: Box, shape: tuple[int, ...]) -> np.ndarray:
    """Pixels farther than half the face's size from its box: never anonymized (padding adds
    0.15 of it on each side, tracking a little more)."""
    x1, y1, x2, y2 = face
    side = max(x2 - x1, y2 - y1) / 2
    keep = np.ones(shape[:2], dtype=bool)
    top, left = max(0, round(y1 - side)), max(0, round(x1 - side))
    keep[top : round(y2 + side), left : round(x2 + side)] = False
    return keep


def assert_face_filled_and_rest_kept(source: Path, output: Path, faces: list[Box]) -> None:
    before, after = read_displayed(source), read_displayed(output)
    assert len(after) == len(before) == len(faces)
    for index, (original, anonymized, face) in enumerate(zip(before, after, faces, strict=True)):
        assert anonymized.shape == original.shape
        assert anonymized[_inner(face)].max() <= 24, f"face shows in frame {index}"
        far = _far_from(face, original.shape)
        difference = np.abs(anonymized.astype(int) - original.astype(int))[far].mean()
        assert difference < UNTOUCHED_MEAN_DIFFERENCE, f"frame {index} changed away from the face"


def test_mp4_keeps_frames_timestamps_and_audio_and_loses_every_tag(tmp_path, videos):
    source, output = tmp_path / "lesson.mp4", tmp_path / "out" / "lesson.mp4"
    faces = make_clip(source)
    result = videos.process(source, output, FILL)
    assert_face_filled_and_rest_kept(source, output, faces)
    assert frame_times(output) == frame_times(source)
    assert audio_packets(output) == audio_packets(source)
    left = all_tags(output)
    for value in TAGS.values():
        assert not any(value in tag for tag in left.values()), value
    assert not any(key.endswith("encoder") or "location" in key for key in left)
    assert result.scan.frames == len(faces)
    assert result.input_sha256 == file_sha256_hex(source)
    assert result.output_sha256 == file_sha256_hex(output)
    assert list(output.parent.iterdir()) == [output]  # no partial file left behind


class _BytesOnly(io.RawIOBase):
    """A seekable raw stream with no file behind it, as a blob store's reader is: PyAV can
    neither name it nor reopen it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        return self._data.readinto(buffer)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()


def test_a_file_object_is_read_as_its_path_would_be(tmp_path, videos):
    source = tmp_path / "lesson.mp4"
    make_clip(source, ClipSpec(frames=8))
    from_path = videos.process(source, tmp_path / "from_path.mp4", FILL)
    blob = io.BufferedReader(_BytesOnly(source.read_bytes()))
    blob.read(100)  # a reader already part way in is read from its start all the same
    assert probe(blob) == probe(source)
    from_blob = videos.process(blob, tmp_path / "from_blob.mp4", FILL)
    assert not blob.closed  # its owner closes it
    assert from_blob.input_sha256 == from_path.input_sha256 == file_sha256_hex(source)
    assert from_path.input_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert [b.tolist() for b in from_blob.scan.outlines] == [
        b.tolist() for b in from_path.scan.outlines
    ]
    assert frame_times(tmp_path / "from_blob.mp4") == frame_times(source)
    assert audio_packets(tmp_path / "from_blob.mp4") == audio_packets(source)


def test_phone_rotation_is_applied_before_detection_and_output_plays_the_same(tmp_path, videos):
    source, output = tmp_path / "phone.mp4", tmp_path / "out.mp4"
    faces = make_clip(source, ClipSpec(rotation=90))
    result = videos.process(source, output, FILL)
    assert (result.scan.width, result.scan.height) == (480, 270)
    assert_face_filled_and_rest_kept(source, output, faces)


def test_variable_frame_rate_keeps_every_timestamp(tmp_path, videos):
    source, output = tmp_path / "vfr.mp4", tmp_path / "out.mp4"
    make_clip(source, ClipSpec(frames=len(VFR_TIMES_MS), times_ms=VFR_TIMES_MS))
    videos.process(source, output, FILL)
    assert frame_times(output) == [t / 1000 for t in VFR_TIMES_MS]


def test_ten_bit_hevc_mkv_with_two_audio_streams_copies_both(tmp_path, videos):
    source, output = tmp_path / "camera.mkv", tmp_path / "out.mkv"
    two_tracks = (AudioSpec(), AudioSpec(codec="libopus", layout="stereo"))
    faces = make_clip(source, ClipSpec(codec="libx265", pix_fmt="yuv420p10le", audio=two_tracks))
    videos.process(source, output, FILL)
    assert_face_filled_and_rest_kept(source, output, faces)
    packets = audio_packets(output)
    assert len(packets) == 2
    assert packets == audio_packets(source)
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize(
    ("name", "spec", "codec"),
    [
        ("clip.webm", ClipSpec(codec="libvpx-vp9", audio=(AudioSpec(codec="libopus"),)), "vp9"),
        ("vp8.webm", ClipSpec(codec="libvpx", audio=(AudioSpec(codec="libopus"),)), "vp9"),
        ("clip.avi", ClipSpec(codec="mpeg4", audio=(AudioSpec(codec="mp3", rate=44100),)), "h264"),
        # AVI keeps no presentation times: B-frames come out of the decoder with decode-order ones.
        ("b-frames.avi", ClipSpec(bframes=2, audio=(AudioSpec(codec="mp3", rate=44100),)), "h264"),
        ("clip.mov", ClipSpec(codec="libx264"), "h264"),
    ],
)
def test_each_container_is_written_as_itself(tmp_path, videos, name, spec, codec):
    source, output = tmp_path / name, tmp_path / "out" / name
    faces = make_clip(source, spec)
    videos.process(source, output, FILL)
    assert_face_filled_and_rest_kept(source, output, faces)
    assert audio_packets(output) == audio_packets(source)
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.name == codec


def test_mute_writes_no_audio(tmp_path, anonymizer):
    source, output = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    make_clip(source, ClipSpec(frames=6))
    VideoAnonymizer(anonymizer, VideoOptions(audio=AudioPolicy.MUTE)).process(source, output, FILL)
    assert audio_packets(output) == []


def test_report_lists_tracks_and_faces_per_frame(tmp_path, videos):
    source = tmp_path / "clip.mp4"
    faces = make_clip(source, ClipSpec(frames=12))
    report = videos.process(source, tmp_path / "out.mp4", FILL).to_dict()
    assert report["frames"] == 12
    assert report["fps"] == 25.0
    assert report["duration"] == pytest.approx(12 / 25)
    assert report["faces_per_frame"] == [1] * 12
    (track,) = report["tracks"]
    assert (track["first_frame"], track["last_frame"]) == (0, 11)
    x, y, w, h = track["largest_box"]
    assert (x, y) < (faces[-1][2], faces[-1][3])
    assert min(w, h) > 50


def _damaged(source: Path, tmp_path: Path, keep: float, overwrite: bool) -> Path:
    data = bytearray(source.read_bytes())
    cut = int(len(data) * keep)
    if overwrite:
        data[cut : cut + 2000] = bytes(range(256)) * 7 + bytes(208)
    else:
        del data[cut:]
    damaged = tmp_path / f"damaged{source.suffix}"
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize("overwrite", [True, False], ids=["corrupt", "truncated"])
def test_damaged_video_fails_with_a_reason_and_leaves_no_output(tmp_path, videos, overwrite):
    source = tmp_path / "clip.mkv"  # Matroska: its header comes first, so a cut file still opens
    make_clip(source, ClipSpec(frames=40))
    # The clip's video packets come first, its audio after them: both kinds of damage hit both.
    damaged = _damaged(source, tmp_path, keep=0.3 if overwrite else 0.6, overwrite=overwrite)
    out = tmp_path / "out"
    with pytest.raises(UnsupportedVideoError, match=r"decode|truncated"):
        videos.process(damaged, out / "clip.mkv", FILL)
    assert not out.exists() or list(out.iterdir()) == []


def test_file_without_video_is_refused(tmp_path, videos):
    source = tmp_path / "voice.mp4"
    make_clip(source, ClipSpec(frames=1))
    with av.open(str(source)) as src, av.open(str(tmp_path / "audio.mp4"), "w") as dst:
        copy = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = copy
                dst.mux(packet)
    with pytest.raises(UnsupportedVideoError, match="no video stream"):
        videos.process(tmp_path / "audio.mp4", tmp_path / "out.mp4", FILL)


def test_not_a_video_is_refused(tmp_path, videos):
    source = tmp_path / "notes.mp4"
    source.write_text("these are not frames")
    with pytest.raises(UnsupportedVideoError, match="not a readable video"):
        videos.process(source, tmp_path / "out.mp4", FILL)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (VideoLimits(max_frame_pixels=480 * 270 - 1), "exceed the limit"),
        (VideoLimits(max_seconds=0.5), "over the limit"),
    ],
)
def test_limits_refuse_before_decoding(tmp_path, anonymizer, limits, message):
    source = tmp_path / "clip.mp4"
    make_clip(source, ClipSpec(frames=25))
    videos = VideoAnonymizer(anonymizer, VideoOptions(limits=limits))
    with pytest.raises(VideoTooLargeError, match=message):
        videos.process(source, tmp_path / "out.mp4", FILL)
    assert not (tmp_path / "out.mp4").exists()


def test_output_with_an_unknown_container_name_is_refused_before_work(tmp_path, videos):
    source = tmp_path / "clip.mp4"
    make_clip(source, ClipSpec(frames=2))
    with pytest.raises(UnsupportedVideoError, match="cannot write a video named"):
        videos.process(source, tmp_path / "out.flv", FILL)


def test_every_other_frame_is_searched_at_half_size_and_large_faces_are_found_in_all(
    tmp_path, videos
):
    source = tmp_path / "clip.mp4"
    make_clip(source, ClipSpec(frames=6))
    scan = videos.scan(source, AnonymizeParams())
    assert all(len(found) >= 1 for found in scan.detections)  # no frame relied on tracking
    sides = [
        videos._searched_view(picture, AnonymizeParams()).max_detection_side
        for picture in _two_pictures(source)
    ]
    assert sides == [AnonymizeParams().max_detection_side, 256]  # half of 480, at least 256


def _two_pictures(source: Path) -> list[Picture]:
    (whole,) = plan_segments(source, math.inf).segments
    with open_container(source) as container:
        stream = pictures(container, first_video_stream(container), whole)
        return [next(stream), next(stream)]
