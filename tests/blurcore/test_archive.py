"""blurcore.archive: the inflation budget of a whole ZIP and the names its entries may have."""

import io
import unicodedata
import zipfile

import pytest

from blurcore.archive import (
    MAX_BATCH_INFLATION_RATIO,
    MIN_INFLATION_BUDGET,
    archive_entries,
    inflation_budget,
)
from blurcore.errors import ArchiveTooLargeError

from ..conftest import with_raw_name, zip_of

MIB = 1024 * 1024
# Under the size from which a single entry's ratio is judged: only the batch's total stops these.
SMALL_COMPRESSIBLE = bytes(512 * 1024)


def verdicts(upload: bytes, **options: object) -> list[tuple[str, str | None, str | None]]:
    with zipfile.ZipFile(io.BytesIO(upload)) as archive:
        return [(e.name, e.status, e.error) for e in archive_entries(archive, **options)]


def test_inflation_budget_scales_with_upload_between_floor_and_ceiling():
    ceiling = 2048 * MIB
    assert inflation_budget(1000, ceiling) == MIN_INFLATION_BUDGET
    assert inflation_budget(100 * MIB, ceiling) == MAX_BATCH_INFLATION_RATIO * 100 * MIB
    assert inflation_budget(512 * MIB, ceiling) == ceiling
    assert inflation_budget(1000, ceiling=MIB) == MIB


def test_archive_entries_stop_at_inflation_budget_however_small_the_entries():
    upload = zip_of({f"{i}.png": SMALL_COMPRESSIBLE for i in range(40)}, zipfile.ZIP_DEFLATED)
    with (
        zipfile.ZipFile(io.BytesIO(upload)) as archive,
        pytest.raises(ArchiveTooLargeError, match="more than 8,388,608 bytes"),
    ):
        for _entry in archive_entries(archive, max_inflated_bytes=8 * MIB):
            pass


def test_archive_entries_read_every_entry_within_inflation_budget():
    upload = zip_of({f"{i}.png": SMALL_COMPRESSIBLE for i in range(16)}, zipfile.ZIP_DEFLATED)
    assert verdicts(upload, max_inflated_bytes=8 * MIB) == [
        (f"{i}.png", None, None) for i in range(16)
    ]


@pytest.mark.parametrize("name", ["C:\\x.jpg", "C:/x.jpg", "c:x.jpg", "\\\\server\\share\\x.jpg"])
def test_archive_entries_skip_drive_letters_and_network_paths(name, astronaut_jpeg):
    assert verdicts(zip_of({name: astronaut_jpeg})) == [(name, "skipped", "unsafe path")]


def test_archive_entries_skip_names_colliding_on_case_insensitive_file_systems():
    composed, decomposed = "é.jpg", unicodedata.normalize("NFD", "é.jpg")
    upload = zip_of(
        {"A.jpg": b"a", "a.jpg": b"b", composed: b"c", decomposed: b"d", "REPORT.JSON": b"e"}
    )
    assert verdicts(upload, reserved_names=frozenset({"report.json"})) == [
        ("A.jpg", None, None),
        ("a.jpg", "skipped", "same file as A.jpg on case-insensitive file systems"),
        (composed, None, None),
        (decomposed, "skipped", f"same file as {composed} on case-insensitive file systems"),
        ("REPORT.JSON", "skipped", "the name report.json is reserved for a file of the output"),
    ]


def test_archive_entries_skip_names_with_control_characters_instead_of_cutting_them():
    upload = zip_of({"x.jpgN.exe": b"a", "lineFbreak.jpg": b"b"})
    upload = with_raw_name(upload, "x.jpgN.exe", b"x.jpg\0.exe")
    upload = with_raw_name(upload, "lineFbreak.jpg", b"line\nbreak.jpg")
    assert verdicts(upload) == [
        ("x.jpg\\x00.exe", "skipped", "control character in name"),
        ("line\\x0abreak.jpg", "skipped", "control character in name"),
    ]
