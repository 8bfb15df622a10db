"""The command line on videos: ``blur`` beside photos, ``detect --json`` one list per frame."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from blurcore import cli
from blurcore.hashing import file_sha256_hex
from tests.blurcore.video.clips import ClipSpec, audio_packets, make_clip, read_displayed


@pytest.fixture(autouse=True)
def cli_uses_loaded_models(monkeypatch, anonymizer):
    monkeypatch.setattr(cli, "Anonymizer", lambda **_options: anonymizer)


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_blur_folder_with_a_video_and_a_photo_mirrors_it_and_reports_the_video(
    tmp_path, capsys, astronaut_jpeg
):
    folder = tmp_path / "lesson"
    folder.mkdir()
    make_clip(folder / "class.mp4", ClipSpec(frames=10))
    (folder / "poster.jpg").write_bytes(astronaut_jpeg)
    code, stdout, _ = run(
        capsys, "blur", folder, "--out", tmp_path / "out", "--report", tmp_path / "r.json",
        "--profile", "fast",
    )  # fmt: skip
    assert code == 0
    assert stdout == ""
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["done"] == 2
    assert report["summary"]["videos"] == 1
    assert report["summary"]["video_frames"] == 10
    (video,) = report["videos"]
    output = tmp_path / "out" / "lesson" / "class.mp4"
    assert video["output"] == str(output)
    assert video["report"]["frames"] == 10
    assert video["report"]["faces_per_frame"] == [1] * 10
    assert video["report"]["input_sha256"] == file_sha256_hex(folder / "class.mp4")
    assert video["report"]["output_sha256"] == file_sha256_hex(output)
    assert len(video["report"]["tracks"]) == 1
    assert (tmp_path / "out" / "lesson" / "poster.jpg").is_file()


def test_detect_prints_the_regions_blur_fills_in_every_frame(tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, ClipSpec(frames=8))
    code, stdout, _ = run(capsys, "detect", clip, "--json", "--profile", "fast")
    assert code == 0
    per_frame = json.loads(stdout)[str(clip)]
    assert len(per_frame) == 8
    code, _, _ = run(
        capsys, "blur", clip, "--out", tmp_path / "out", "--mode", "fill", "--profile", "fast"
    )
    assert code == 0
    filled = read_displayed(tmp_path / "out" / "clip.mp4")
    for regions, frame in zip(per_frame, filled, strict=True):
        (region,) = regions
        x, y, w, h, score = region
        assert 0.0 < score <= 1.0
        centre = frame[round(y + h / 2) - 2 : round(y + h / 2) + 2, round(x + w / 2) - 2 :][:, :4]
        assert centre.max() <= 24  # the middle of each printed region is black in the output
        assert frame[:, round(x + w) + 4 :].mean() > 24  # right of the region it is not


def test_blur_mute_and_a_video_inside_a_zip(tmp_path, capsys):
    make_clip(tmp_path / "clip.mp4", ClipSpec(frames=6))
    album = tmp_path / "album.zip"
    with zipfile.ZipFile(album, "w") as archive:
        archive.write(tmp_path / "clip.mp4", "videos/clip.mp4")
    code, _, _ = run(
        capsys, "blur", album, "--out", tmp_path / "out", "--audio", "mute", "--profile", "fast",
        "--report", tmp_path / "r.json",
    )  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    (video,) = report["videos"]
    assert video["status"] == "done"
    assert video["input"] == f"{album}!videos/clip.mp4"
    with zipfile.ZipFile(tmp_path / "out" / "album.zip") as archive:
        archive.extract("videos/clip.mp4", tmp_path / "unzipped")
    unzipped = tmp_path / "unzipped" / "videos" / "clip.mp4"
    assert len(read_displayed(unzipped)) == 6
    assert audio_packets(unzipped) == []


def test_blur_reports_a_broken_video_as_failed_and_writes_nothing(tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    code, _, _ = run(
        capsys, "blur", broken, "--out", tmp_path / "out", "--report", tmp_path / "r.json"
    )
    assert code == 1
    (video,) = json.loads((tmp_path / "r.json").read_text())["videos"]
    assert video["status"] == "failed"
    assert "not a readable video" in video["error"]
    assert not any(Path(tmp_path / "out").rglob("*.mp4"))


def test_max_video_seconds_refuses_a_longer_clip(tmp_path, capsys):
    make_clip(tmp_path / "clip.mp4", ClipSpec(frames=25))
    code, _, _ = run(
        capsys, "blur", tmp_path / "clip.mp4", "--out", tmp_path / "out",
        "--max-video-seconds", "0.5", "--report", tmp_path / "r.json",
    )  # fmt: skip
    assert code == 1
    (video,) = json.loads((tmp_path / "r.json").read_text())["videos"]
    assert "over the limit" in video["error"]
    assert np.all([not p.is_file() for p in (tmp_path / "out").rglob("*")])


def test_eval_scores_a_video_set_by_the_pixels_filled(tmp_path, capsys):
    dataset = tmp_path / "video"
    (dataset / "clips").mkdir(parents=True)
    faces = make_clip(dataset / "clips" / "pan.mp4", ClipSpec(frames=10))
    frames_gt = [
        {"faces": [[x1, y1, x2 - x1, y2 - y1, 0]], "ignore": []} for x1, y1, x2, y2 in faces
    ]
    clip = {"file": "clips/pan.mp4", "width": 480, "height": 270, "fps": 25, "frames_gt": frames_gt}
    (dataset / "annotations_video.json").write_text(json.dumps({"clips": [clip]}))
    code, stdout, _ = run(
        capsys, "eval", dataset, "--profile", "fast", "--json-out", tmp_path / "figures.json"
    )
    assert code == 0
    assert "1 clips" in stdout
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["params"]["profile"] == "fast"
    assert figures["buckets"][">=64"]["protected"] == 10
    assert figures["buckets"][">=64"]["face_frames"] == 10
    assert figures["audio_kept_everywhere"] is True
    assert figures["tags_survived"] == []
