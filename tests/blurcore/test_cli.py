"""The ``blurcore`` command line on a real portrait (scikit-image's astronaut, NASA, public domain).

Commands run in-process through ``cli.main`` with the session's loaded models; one test runs the
installed console script, to cover what only a real process shows (the C++ runtimes' output, the
logging set-up, the exit status).
"""

import hashlib
import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blurcore import AnonymizeParams, cli
from blurcore.imageio import ImageFormat, sniff_format
from blurcore.scoring import REPORT_BUCKETS

from ..conftest import decode_rgb

BLURCORE_SCRIPT = Path(sys.executable).parent / "blurcore"
NOT_AN_IMAGE = b"these are text bytes in a file named like a JPEG\n"
FACE_CENTRE = (225.0, 117.0)  # x, y of the astronaut's face in the 512x512 portrait
# The report rounds regions to 0.1 px while anonymization rounds the exact box outwards to whole
# pixels, so pixels up to one away from a reported edge may belong to the region.
EDGE_SLACK = 1.0


@pytest.fixture(autouse=True)
def cli_uses_loaded_models(monkeypatch, anonymizer):
    """In-process commands reuse the session's loaded detectors instead of loading their own."""
    monkeypatch.setattr(cli, "Anonymizer", lambda **_options: anonymizer)


@pytest.fixture
def astronaut_png(astronaut_jpeg) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(astronaut_jpeg)).save(buffer, format="PNG")
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder``, hidden ones included, as POSIX paths relative to it."""
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def records_by_input(report: dict) -> dict[str, dict]:
    return {record["input"]: record for record in report["images"]}


def pixel_box(region: list[float], slack: float = 0.0) -> tuple[int, int, int, int]:
    """left, top, right, bottom of an [x, y, w, h, score] region grown by ``slack`` pixels."""
    x, y, w, h, _score = region
    return (
        max(0, math.floor(x - slack)),
        max(0, math.floor(y - slack)),
        math.ceil(x + w + slack),
        math.ceil(y + h + slack),
    )


def outside_regions(shape: tuple[int, ...], regions: list[list[float]]) -> np.ndarray:
    outside = np.ones(shape[:2], dtype=bool)
    for region in regions:
        left, top, right, bottom = pixel_box(region, EDGE_SLACK)
        outside[top:bottom, left:right] = False
    return outside


def contains(region: list[float], point: tuple[float, float]) -> bool:
    x, y, w, h, _score = region
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def assert_well_formed_regions(regions: list[list[float]], width: int, height: int) -> None:
    for region in regions:
        assert len(region) == 5
        x, y, w, h, score = region
        assert 0 <= x < width
        assert 0 <= y < height
        assert 0 < w <= width
        assert 0 < h <= height
        assert 0 < score <= 1


def test_blur_writes_anonymized_file_and_report(tmp_path, capsys, astronaut_jpeg):
    source = write(tmp_path / "in" / "astronaut.jpg", astronaut_jpeg)
    out, report_path = tmp_path / "out", tmp_path / "report.json"

    code, stdout, _ = run(capsys, "blur", source, "--out", out, "--report", report_path)

    assert code == 0
    assert stdout == ""  # blur prints results to files only
    output = out / "astronaut.jpg"
    assert files_under(out) == {"astronaut.jpg"}
    assert sniff_format(output.read_bytes()) is ImageFormat.JPEG
    report = json.loads(report_path.read_text())
    [record] = report["images"]
    assert report["summary"] == {
        "total": 1,
        "done": 1,
        "failed": 0,
        "skipped": 0,
        "faces": record["faces"],
        "videos": 0,
        "video_frames": 0,
    }
    assert record["status"] == "done"
    assert record["error"] is None
    assert record["faces"] >= 1
    assert record["input"] == str(source)
    assert record["output"] == str(output)
    assert record["input_sha256"] == sha256_of(astronaut_jpeg)
    assert record["output_sha256"] == sha256_of(output.read_bytes())
    assert report["params"]["profile"] == "default"
    assert_well_formed_regions(record["regions"], 512, 512)
    assert any(contains(region, FACE_CENTRE) for region in record["regions"])

    before = decode_rgb(astronaut_jpeg).astype(np.int16)
    after = decode_rgb(output.read_bytes()).astype(np.int16)
    assert after.shape == before.shape
    difference = np.abs(after - before).mean(axis=2)
    for region in record["regions"]:
        left, top, right, bottom = pixel_box(region)
        middle_x, middle_y = (right - left) // 4, (bottom - top) // 4
        face = difference[top + middle_y : bottom - middle_y, left + middle_x : right - middle_x]
        assert face.mean() > 15
    assert difference[outside_regions(before.shape, record["regions"])].mean() < 3


def test_blur_keeps_png_pixels_outside_regions_exactly(tmp_path, capsys, astronaut_png):
    source = write(tmp_path / "astronaut.png", astronaut_png)
    out, report_path = tmp_path / "out", tmp_path / "report.json"

    code, _, _ = run(capsys, "blur", source, "--out", out, "--report", report_path)

    assert code == 0
    output = (out / "astronaut.png").read_bytes()
    assert sniff_format(output) is ImageFormat.PNG
    [record] = json.loads(report_path.read_text())["images"]
    assert record["faces"] >= 1
    before, after = decode_rgb(astronaut_png), decode_rgb(output)
    outside = outside_regions(before.shape, record["regions"])
    assert np.array_equal(after[outside], before[outside])  # lossless: untouched means equal
    assert not np.array_equal(after[~outside], before[~outside])


def test_blur_mirrors_folder_tree_and_fails_closed_on_corrupt_image(
    tmp_path, capsys, astronaut_jpeg, astronaut_png
):
    photos = tmp_path / "photos"
    write(photos / "astronaut.jpg", astronaut_jpeg)
    write(photos / "nested" / "deeper" / "astronaut.png", astronaut_png)
    write(photos / "nested" / "notes.txt", b"shopping list\n")
    write(photos / "broken.jpg", NOT_AN_IMAGE)
    out, report_path = tmp_path / "out", tmp_path / "report.json"

    code, _, _ = run(capsys, "blur", photos, "--out", out, "--report", report_path)

    assert code == 1  # one image failed
    # Same tree under out/photos/; no copy of the corrupt file, the text file, nor temporaries.
    assert files_under(out) == {"photos/astronaut.jpg", "photos/nested/deeper/astronaut.png"}
    assert sniff_format((out / "photos/astronaut.jpg").read_bytes()) is ImageFormat.JPEG
    png_output = (out / "photos/nested/deeper/astronaut.png").read_bytes()
    assert sniff_format(png_output) is ImageFormat.PNG
    assert png_output != astronaut_png

    report = json.loads(report_path.read_text())
    records = records_by_input(report)
    assert report["summary"]["total"] == 4
    assert report["summary"]["done"] == 2
    assert report["summary"]["failed"] == 1
    assert report["summary"]["skipped"] == 1
    assert report["summary"]["faces"] >= 2
    broken = records[str(photos / "broken.jpg")]
    assert broken["status"] == "failed"
    assert broken["error"]  # the reason, for the person reading the report
    assert broken["output"] is None
    assert broken["input_sha256"] == sha256_of(NOT_AN_IMAGE)
    notes = records[str(photos / "nested" / "notes.txt")]
    assert notes["status"] == "skipped"
    assert notes["error"] == "not an image"
    assert notes["output"] is None
    png = records[str(photos / "nested" / "deeper" / "astronaut.png")]
    assert png["output"] == str(out / "photos" / "nested" / "deeper" / "astronaut.png")
    assert png["output_sha256"] == sha256_of(png_output)


def test_blur_rewrites_zip_with_only_safe_anonymized_images(
    tmp_path, capsys, astronaut_jpeg, astronaut_png
):
    album = tmp_path / "album.zip"
    with zipfile.ZipFile(album, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("trip/", b"")
        archive.writestr("trip/day1/astronaut.jpg", astronaut_jpeg)
        archive.writestr("readme.txt", b"holiday photos\n")
        archive.writestr("trip/broken.jpg", astronaut_jpeg[: len(astronaut_jpeg) // 2])
        archive.writestr("../evil.jpg", astronaut_jpeg)
        archive.writestr("astronaut.png", astronaut_png)
    out, report_path = tmp_path / "out", tmp_path / "report.json"

    code, _, _ = run(capsys, "blur", album, "--out", out, "--report", report_path)

    assert code == 1  # the truncated JPEG failed
    assert files_under(out) == {"album.zip"}  # no .partial left behind
    report = json.loads(report_path.read_text())
    records = records_by_input(report)
    with zipfile.ZipFile(out / "album.zip") as output:
        assert output.namelist() == ["trip/day1/astronaut.jpg", "astronaut.png"]
        entries = {name: output.read(name) for name in output.namelist()}
    for name, original, image_format in (
        ("trip/day1/astronaut.jpg", astronaut_jpeg, ImageFormat.JPEG),
        ("astronaut.png", astronaut_png, ImageFormat.PNG),
    ):
        record = records[f"{album}!{name}"]
        assert record["status"] == "done"
        assert record["faces"] >= 1
        assert record["output"] == f"{out / 'album.zip'}!{name}"
        assert record["input_sha256"] == sha256_of(original)
        assert record["output_sha256"] == sha256_of(entries[name])
        assert sniff_format(entries[name]) is image_format
        assert entries[name] != original
    evil = records[f"{album}!../evil.jpg"]
    assert (evil["status"], evil["error"], evil["output"]) == ("skipped", "unsafe path", None)
    assert records[f"{album}!readme.txt"]["status"] == "skipped"
    broken = records[f"{album}!trip/broken.jpg"]
    assert broken["status"] == "failed"
    assert broken["error"]
    assert broken["output"] is None
    assert report["summary"] == {
        "total": 5,
        "done": 2,
        "failed": 1,
        "skipped": 2,
        "faces": sum(record["faces"] for record in records.values()),
        "videos": 0,
        "video_frames": 0,
    }


def test_detect_prints_one_json_object_matching_blur_report(
    tmp_path, monkeypatch, capsys, astronaut_jpeg, astronaut_png
):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "in" / "astronaut.jpg", astronaut_jpeg)
    write(tmp_path / "in" / "astronaut.png", astronaut_png)
    params = ["--padding", "1.5", "--max-detection-side", "384"]
    code, _, _ = run(
        capsys, "blur", "in/astronaut.jpg", "in/astronaut.png", "--out", "out",
        "--report", "report.json", *params,
    )  # fmt: skip
    assert code == 0
    blurred = records_by_input(json.loads((tmp_path / "report.json").read_text()))

    code, stdout, _ = run(
        capsys, "detect", "./in/astronaut.jpg", "in/astronaut.png", "--json", *params
    )

    assert code == 0
    printed = json.loads(stdout)  # the whole of stdout is the one JSON object
    assert printed == {
        "./in/astronaut.jpg": blurred["in/astronaut.jpg"]["regions"],
        "in/astronaut.png": blurred["in/astronaut.png"]["regions"],
    }
    assert all(printed.values())  # each holds the face
    for regions in printed.values():
        assert_well_formed_regions(regions, 512, 512)
    # The parameters reach the detection: padding 1.5 gives regions 1.5 / default as wide.
    code, stdout, _ = run(capsys, "detect", "in/astronaut.png", "--json")
    [default_region] = json.loads(stdout)["in/astronaut.png"]
    [padded_region] = printed["in/astronaut.png"]
    default_padding = AnonymizeParams().padding
    assert padded_region[2] / default_region[2] == pytest.approx(1.5 / default_padding, rel=0.05)


def test_detect_reports_unreadable_files_and_prints_the_others(
    tmp_path, capsys, caplog, astronaut_jpeg
):
    good = write(tmp_path / "good.jpg", astronaut_jpeg)
    broken = write(tmp_path / "broken.jpg", NOT_AN_IMAGE)
    missing = tmp_path / "missing.jpg"

    code, stdout, _ = run(capsys, "detect", broken, good, missing, "--json")

    assert code == 1
    printed = json.loads(stdout)
    assert list(printed) == [str(good)]
    assert any(contains(region, FACE_CENTRE) for region in printed[str(good)])
    # Under pytest the log goes to caplog; the console script test checks it reaches stderr.
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 2
    assert str(broken) in errors[0]
    assert str(missing) in errors[1]


def test_eval_prints_bucket_table_and_writes_json(tmp_path, capsys, astronaut_jpeg):
    dataset = tmp_path / "dataset"
    write(dataset / "images" / "astronaut.jpg", astronaut_jpeg)
    gray = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(gray, format="JPEG")
    write(dataset / "images" / "gray.jpg", gray.getvalue())
    face = {"file": "images/astronaut.jpg", "width": 512, "height": 512}
    face |= {"faces": [[175, 60, 100, 115]], "ignore": []}
    (dataset / "annotations.json").write_text(json.dumps({"images": [face]}))
    negative = {"file": "images/gray.jpg", "width": 320, "height": 240, "faces": [], "ignore": []}
    (dataset / "negatives.json").write_text(json.dumps({"images": [negative]}))
    figures_path = tmp_path / "figures.json"

    code, stdout, _ = run(capsys, "eval", dataset, "--json-out", figures_path)

    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in stdout.splitlines() if line.strip()}
    for bucket in REPORT_BUCKETS:
        assert bucket in rows
    assert rows["all"] == ["1", "100.0%", "100.0%"]  # faces, protected, recall
    assert rows["64-128"] == ["1", "100.0%", "100.0%"]
    assert rows["<16"] == ["0", "-", "-"]
    figures = json.loads(figures_path.read_text())
    assert figures["params"]["profile"] == "default"
    assert figures["buckets"]["all"]["faces"] == 1
    assert figures["buckets"]["all"]["protected"] == 1
    assert figures["buckets"]["all"]["protected_rate"] == 1.0
    assert figures["buckets"]["64-128"]["protected"] == 1
    assert figures["images"] == 2
    assert figures["negatives"] == 1
    assert figures["negatives_touched"] == 0


def test_eval_exits_2_for_missing_dataset(tmp_path, capsys):
    missing = tmp_path / "no-such-dataset"

    code, stdout, stderr = run(capsys, "eval", missing)

    assert code == 2
    assert stdout == ""
    assert stderr.startswith("blurcore: ")
    assert str(missing) in stderr


def test_blur_exits_2_for_missing_input(tmp_path, capsys):
    missing = tmp_path / "nothing-here.jpg"

    code, _, stderr = run(capsys, "blur", missing, "--out", tmp_path / "out")

    assert code == 2
    assert str(missing) in stderr


def test_blur_rejects_out_of_range_padding_with_exit_2(tmp_path, capsys, astronaut_jpeg):
    source = write(tmp_path / "astronaut.jpg", astronaut_jpeg)
    out = tmp_path / "out"

    code, stdout, stderr = run(capsys, "blur", source, "--out", out, "--padding", "9")

    assert code == 2
    assert stdout == ""
    assert "invalid parameters" in stderr
    assert "padding" in stderr
    assert not out.exists()  # refused before anything ran


def test_blur_pixelate_rectangle_outline_changes_output(tmp_path, capsys, astronaut_png):
    source = write(tmp_path / "astronaut.png", astronaut_png)
    report_path = tmp_path / "report.json"
    code, _, _ = run(capsys, "blur", source, "--out", tmp_path / "default")
    assert code == 0
    code, _, _ = run(
        capsys, "blur", source, "--out", tmp_path / "styled", "--report", report_path,
        "--mode", "pixelate", "--shape", "rectangle", "--outline",
    )  # fmt: skip
    assert code == 0

    report = json.loads(report_path.read_text())
    assert (report["params"]["mode"], report["params"]["shape"]) == ("pixelate", "rectangle")
    assert report["params"]["outline"] is True
    original = decode_rgb(astronaut_png)
    default = decode_rgb((tmp_path / "default" / "astronaut.png").read_bytes())
    styled = decode_rgb((tmp_path / "styled" / "astronaut.png").read_bytes())
    assert not np.array_equal(styled, default)
    [region] = report["images"][0]["regions"]
    left, top, right, bottom = pixel_box(region)
    # The review outline: pure green on the region's edge (PNG keeps it exact).
    assert tuple(styled[top, (left + right) // 2]) == (0, 255, 0)
    assert tuple(styled[(top + bottom) // 2, left]) == (0, 255, 0)
    # Just inside the region's corner: an ellipse leaves it alone, a rectangle does not.
    corner = np.s_[top + 4 : top + 10, left + 4 : left + 10]
    assert np.array_equal(default[corner], original[corner])
    assert not np.array_equal(styled[corner], original[corner])


def test_blur_fast_profile_finds_astronaut_face(tmp_path, capsys, astronaut_jpeg):
    source = write(tmp_path / "astronaut.jpg", astronaut_jpeg)
    report_path = tmp_path / "report.json"

    code, _, _ = run(
        capsys, "blur", source, "--out", tmp_path / "out", "--report", report_path,
        "--profile", "fast",
    )  # fmt: skip

    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["params"]["profile"] == "fast"
    [record] = report["images"]
    assert record["faces"] >= 1
    assert any(contains(region, FACE_CENTRE) for region in record["regions"])


def test_console_script_detect_keeps_stdout_to_json_and_errors_on_stderr(tmp_path, astronaut_jpeg):
    assert BLURCORE_SCRIPT.is_file(), f"console script not installed next to {sys.executable}"
    write(tmp_path / "astronaut.jpg", astronaut_jpeg)
    write(tmp_path / "broken.jpg", NOT_AN_IMAGE)

    completed = subprocess.run(
        [str(BLURCORE_SCRIPT), "detect", "astronaut.jpg", "broken.jpg", "--json", "--threads", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 1, completed.stderr
    printed = json.loads(completed.stdout)  # the native runtimes' chatter stays off stdout
    assert list(printed) == ["astronaut.jpg"]
    assert any(contains(region, FACE_CENTRE) for region in printed["astronaut.jpg"])
    assert "broken.jpg" in completed.stderr
    assert "ERROR" in completed.stderr
