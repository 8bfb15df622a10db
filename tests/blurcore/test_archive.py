"""blurcore.archive: the inflation budget of a whole ZIP, the names its entries may have, and
the bounds on reading one entry: never past its declared size, whatever its data inflates to."""

import dataclasses
import io
import os
import re
import struct
import unicodedata
import zipfile

import pytest

from blurcore.archive import (
    MAX_BATCH_INFLATION_RATIO,
    MIN_INFLATION_BUDGET,
    EntryLocation,
    archive_entries,
    declared_inflation,
    entry_chunks,
    entry_kind,
    inflation_budget,
    judged_entries,
    read_entry,
)
from blurcore.errors import ArchiveEntryError, ArchiveTooLargeError
from blurcore.video.containers import MATROSKA, MP4, QUICKTIME

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


class CountingFile(io.BytesIO):
    """A ZIP in memory that counts the bytes read out of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def declaring(upload: bytes, uncompressed_size: int) -> bytes:
    """``upload`` (one entry) with its central directory declaring another uncompressed size."""
    lying = bytearray(upload)
    struct.pack_into("<I", lying, lying.rindex(b"PK\x01\x02") + 24, uncompressed_size)
    return bytes(lying)


def located(upload: bytes, name: str) -> EntryLocation:
    with zipfile.ZipFile(io.BytesIO(upload)) as archive:
        return EntryLocation.of(archive.getinfo(name))


def test_an_entry_whose_headers_lie_is_read_no_further_than_it_declares():
    # 64 MiB of zeros deflate to 64 KiB; the directory says the entry holds 1,000 bytes.
    upload = declaring(zip_of({"a.jpg": bytes(64 * MIB)}, zipfile.ZIP_DEFLATED), 1000)
    with zipfile.ZipFile(io.BytesIO(upload)) as archive:
        assert declared_inflation(archive) == 1000
    zipped = CountingFile(upload)
    with pytest.raises(ArchiveEntryError, match=r"unreadable entry: Bad CRC-32 for file 'a\.jpg'"):
        read_entry(zipped, "a.jpg", located(upload, "a.jpg"), max_bytes=5 * MIB)
    # A read inflates what it asks for: asking for the declared size, not the limit, is what
    # keeps this to a chunk of the 64 KiB of compressed data.
    assert zipped.bytes_read < 16 * 1024


def test_read_entry_reads_the_entry_at_its_location_alone(astronaut_jpeg):
    upload = zip_of(
        {"folder/": b"", "a.txt": b"text", "b.jpg": astronaut_jpeg}, zipfile.ZIP_DEFLATED
    )
    location = located(upload, "b.jpg")
    zipped = CountingFile(upload)
    assert read_entry(zipped, "b.jpg", location, max_bytes=len(astronaut_jpeg)) == astronaut_jpeg
    assert zipped.bytes_read < location.compress_size + 1024  # no central directory read
    with pytest.raises(ArchiveEntryError, match="entry too large"):
        read_entry(io.BytesIO(upload), "b.jpg", location, max_bytes=len(astronaut_jpeg) - 1)


def test_entry_chunks_stream_an_entry_within_the_same_bounds():
    data = os.urandom(3 * MIB + 5)
    upload = zip_of({"a.mp4": data}, zipfile.ZIP_DEFLATED)
    location = located(upload, "a.mp4")
    chunks = list(entry_chunks(io.BytesIO(upload), "a.mp4", location, max_bytes=4 * MIB))
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= MIB
    with pytest.raises(ArchiveEntryError, match="entry too large"):
        list(entry_chunks(io.BytesIO(upload), "a.mp4", location, max_bytes=3 * MIB))
    lying = declaring(zip_of({"a.mp4": bytes(64 * MIB)}, zipfile.ZIP_DEFLATED), 1000)
    zipped = CountingFile(lying)
    with pytest.raises(ArchiveEntryError, match="Bad CRC-32"):
        list(entry_chunks(zipped, "a.mp4", located(lying, "a.mp4"), max_bytes=MIB))
    assert zipped.bytes_read < 16 * 1024


def test_read_entry_at_a_location_holding_no_entry_fails_with_the_reason(astronaut_jpeg):
    upload = zip_of({"a.jpg": astronaut_jpeg})
    location = dataclasses.replace(located(upload, "a.jpg"), header_offset=100)
    with pytest.raises(ArchiveEntryError, match="no local header where the central directory"):
        read_entry(io.BytesIO(upload), "a.jpg", location, max_bytes=MIB)


def test_an_entry_with_damaged_data_fails_with_the_reason(astronaut_jpeg):
    upload = bytearray(zip_of({"a.jpg": astronaut_jpeg}))
    location = located(bytes(upload), "a.jpg")
    upload[len(upload) // 2] ^= 0xFF  # inside the stored entry's data
    with pytest.raises(ArchiveEntryError, match="Bad CRC-32"):
        read_entry(io.BytesIO(bytes(upload)), "a.jpg", location, max_bytes=MIB)


def test_entries_compressed_other_than_stored_or_deflated_are_never_read():
    # bzip2 decompresses a chunk whole before zipfile cuts it at the declared size: a lying
    # entry would take all the memory it inflates to.
    upload = zip_of({"a.jpg": bytes(1000), "b.png": bytes(1000)}, zipfile.ZIP_BZIP2)
    reason = f"compression method {zipfile.ZIP_BZIP2} (only stored or deflated)"
    assert verdicts(upload) == [("a.jpg", "failed", reason), ("b.png", "failed", reason)]
    with pytest.raises(ArchiveEntryError, match=re.escape(reason)):
        read_entry(io.BytesIO(upload), "a.jpg", located(upload, "a.jpg"), max_bytes=MIB)


def test_judged_entries_inflate_nothing():
    upload = zip_of({"folder/": b"", "a.jpg": os.urandom(MIB), "../b.jpg": b"x"})
    zipped = CountingFile(upload)
    with zipfile.ZipFile(zipped) as archive:
        read_for_directory = zipped.bytes_read
        judged = [(e.name, e.status) for e in judged_entries(archive)]
    assert judged == [("a.jpg", None), ("../b.jpg", "skipped")]
    assert zipped.bytes_read == read_for_directory


def test_an_entry_is_classified_by_its_name_or_a_short_prefix(astronaut_jpeg):
    upload = zip_of(
        {
            "photo": astronaut_jpeg,
            "notes.txt": os.urandom(4 * MIB),
            "named.jpg": b"not an image at all",
            "clip": b"\x00\x00\x00\x14ftypqt  " + os.urandom(4 * MIB),
            "lesson.mp4": b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska",
            "damaged.m4v": b"garbage",
        },
        zipfile.ZIP_DEFLATED,
    )
    zipped = CountingFile(upload)
    with zipfile.ZipFile(zipped) as archive:
        before = zipped.bytes_read
        kinds = {e.name: entry_kind(archive, e) for e in judged_entries(archive)}
    assert kinds == {
        "photo": "image",
        "notes.txt": None,
        "named.jpg": "image",
        "clip": QUICKTIME,  # by its first bytes
        "lesson.mp4": MATROSKA,  # its first bytes over its name
        "damaged.m4v": MP4,  # by its name: tried, and failed with the reason
    }
    assert zipped.bytes_read - before < 64 * 1024
