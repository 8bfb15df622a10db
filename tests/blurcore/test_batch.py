"""blurcore.batch directly: missing, damaged, hostile and interrupted input."""

import stat
import struct
import zipfile
from pathlib import Path

import pytest

from blurcore import batch
from blurcore.batch import blur_inputs
from blurcore.params import AnonymizeParams

FAST = AnonymizeParams(profile="fast")
NOT_AN_IMAGE = b"plain text, not a photo\n"


def write_zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def damage_entry(path: Path, name: str) -> None:
    """Flip one byte in the middle of an entry's stored data, leaving the ZIP structure intact."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    raw = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack_from("<HH", raw, info.header_offset + 26)
    data_start = info.header_offset + 30 + name_length + extra_length
    raw[data_start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(raw)


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def test_blur_inputs_raises_file_not_found_for_missing_path(tmp_path, anonymizer):
    missing = tmp_path / "no-such-photo.jpg"

    with pytest.raises(FileNotFoundError, match=r"no-such-photo\.jpg"):
        blur_inputs([missing], tmp_path / "out", anonymizer, FAST)

    assert not (tmp_path / "out").exists()


def test_blur_inputs_fails_encrypted_zip_entry(tmp_path, anonymizer, astronaut_jpeg):
    album = tmp_path / "album.zip"
    with zipfile.ZipFile(album, "w") as archive:
        archive.writestr("open.jpg", astronaut_jpeg)
        archive.writestr("secret.jpg", astronaut_jpeg)
        # zipfile cannot encrypt; the flag in the central directory is what readers go by.
        archive.getinfo("secret.jpg").flag_bits |= 0x1
    with zipfile.ZipFile(album) as archive:
        assert archive.getinfo("secret.jpg").flag_bits & 0x1

    report = blur_inputs([album], tmp_path / "out", anonymizer, FAST)

    secret, opened = (
        next(r for r in report.images if r.input == f"{album}!{name}")
        for name in ("secret.jpg", "open.jpg")
    )
    assert secret.status == "failed"
    assert "encrypted" in (secret.error or "")
    assert secret.output is None
    assert opened.status == "done"
    assert opened.faces >= 1
    with zipfile.ZipFile(tmp_path / "out" / "album.zip") as output:
        assert output.namelist() == ["open.jpg"]


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"]
)
def test_blur_inputs_fails_damaged_zip_entry_and_goes_on(
    tmp_path, anonymizer, astronaut_jpeg, compression
):
    album = write_zip(
        tmp_path / "album.zip",
        {"damaged.jpg": astronaut_jpeg, "fine.jpg": astronaut_jpeg},
        compression,
    )
    damage_entry(album, "damaged.jpg")
    after = tmp_path / "after.jpg"
    after.write_bytes(astronaut_jpeg)
    out = tmp_path / "out"

    report = blur_inputs([album, after], out, anonymizer, FAST)

    statuses = {record.input: record.status for record in report.images}
    assert statuses == {
        f"{album}!damaged.jpg": "failed",
        f"{album}!fine.jpg": "done",
        str(after): "done",  # the batch went on past the damaged entry
    }
    assert report.images[0].output is None
    assert report.images[0].error
    assert files_under(out) == {"album.zip", "after.jpg"}
    with zipfile.ZipFile(out / "album.zip") as output:
        assert output.namelist() == ["fine.jpg"]


def test_blur_inputs_leaves_no_partial_zip_when_interrupted(tmp_path, anonymizer, astronaut_jpeg):
    album = write_zip(tmp_path / "album.zip", {"a.jpg": astronaut_jpeg, "b.jpg": astronaut_jpeg})
    out = tmp_path / "out"

    def interrupt(_count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        blur_inputs([album], out, anonymizer, FAST, on_image=interrupt)

    assert files_under(out) == set()


@pytest.mark.parametrize(
    "name", ["../evil.jpg", "/etc/evil.jpg", "photos/../../evil.jpg", "..\\evil.jpg"]
)
def test_blur_inputs_skips_zip_entry_with_unsafe_path(tmp_path, anonymizer, astronaut_jpeg, name):
    album = write_zip(tmp_path / "album.zip", {name: astronaut_jpeg})

    report = blur_inputs([album], tmp_path / "out", anonymizer, FAST)

    [record] = report.images
    assert (record.status, record.error, record.output) == ("skipped", "unsafe path", None)
    with zipfile.ZipFile(tmp_path / "out" / "album.zip") as output:
        assert output.namelist() == []
    assert not (tmp_path / "evil.jpg").exists()


def test_archive_entries_fail_entry_over_size_limit(tmp_path, astronaut_jpeg):
    album = write_zip(tmp_path / "album.zip", {"big.jpg": astronaut_jpeg, "ok.jpg": b"x"})

    with zipfile.ZipFile(album) as archive:
        big, small = batch.archive_entries(archive, max_entry_bytes=len(astronaut_jpeg) - 1)

    assert (big.status, big.error, big.data) == ("failed", "entry too large", None)
    assert (small.status, small.data) == (None, b"x")


def test_blur_inputs_fails_file_named_zip_that_is_not_one(tmp_path, anonymizer):
    fake = tmp_path / "archive.zip"
    fake.write_bytes(b"PK\x03\x04 truncated")

    [record] = blur_inputs([fake], tmp_path / "out", anonymizer, FAST).images

    assert record.status == "failed"
    assert "not a valid ZIP" in (record.error or "")
    assert not (tmp_path / "out" / "archive.zip").exists()


def test_blur_inputs_counts_every_file_once_in_progress_and_summary(
    tmp_path, anonymizer, astronaut_jpeg
):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "face.jpg").write_bytes(astronaut_jpeg)
    (folder / "notes.txt").write_bytes(NOT_AN_IMAGE)
    (folder / "broken.png").write_bytes(NOT_AN_IMAGE)
    progress: list[int] = []

    report = blur_inputs([folder], tmp_path / "out", anonymizer, FAST, on_image=progress.append)

    assert sum(progress) == 3
    summary = report.summary()
    assert summary == {
        "total": 3, "done": 1, "failed": 1, "skipped": 1, "faces": summary["faces"],
        "videos": 0, "video_frames": 0,
    }  # fmt: skip
    assert summary["faces"] >= 1
    assert report.to_dict()["summary"] == summary
    assert files_under(tmp_path / "out") == {"photos/sub/face.jpg"}


def _archive_verdicts(path: Path) -> dict[str, tuple[str | None, str | None]]:
    with zipfile.ZipFile(path) as archive:
        return {entry.name: (entry.status, entry.error) for entry in batch.archive_entries(archive)}


def test_archive_entries_skip_symlinks_duplicates_and_nested_archives(tmp_path, astronaut_jpeg):
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("face.jpg", astronaut_jpeg)
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("inner.zip", b"PK\x05\x06" + b"\x00" * 18)
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("face.jpg", b"a second entry with the same name")
    with zipfile.ZipFile(path) as archive:
        entries = list(batch.archive_entries(archive))
    assert [(e.name, e.status, e.error) for e in entries] == [
        ("face.jpg", None, None),
        ("link.jpg", "skipped", "symbolic link"),
        ("inner.zip", "skipped", "nested archive"),
        ("face.jpg", "skipped", "duplicate name"),
    ]
    assert entries[0].data == astronaut_jpeg


def test_archive_entries_refuse_zip_bomb_ratio(tmp_path):
    bomb = write_zip(
        tmp_path / "bomb.zip", {"huge.png": b"\x00" * (8 * 1024 * 1024)}, zipfile.ZIP_DEFLATED
    )
    assert _archive_verdicts(bomb) == {
        "huge.png": ("failed", "suspicious compression ratio (a ZIP bomb?)")
    }


def test_archive_entries_read_legacy_non_utf8_names(tmp_path, astronaut_jpeg):
    # Old Windows tools store names in CP437 without the UTF-8 flag: "é" is byte 0x82, which is
    # not valid UTF-8. Write an ASCII placeholder of the same length, then patch the bytes in.
    path = write_zip(tmp_path / "legacy.zip", {"cafX/Xquipe.jpg": astronaut_jpeg})
    path.write_bytes(path.read_bytes().replace(b"cafX/Xquipe.jpg", b"caf\x82/\x82quipe.jpg"))
    assert _archive_verdicts(path) == {"café/équipe.jpg": (None, None)}
