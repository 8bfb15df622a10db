"""The files of a ZIP archive, each with the verdict that decides whether it may be anonymized.

Shared by the command line, the gateway, which judges an uploaded batch from its central
directory before queueing it, and the workers, which read one entry each; nothing here loads a
model, so the gateway imports it without the inference runtimes.
"""

import io
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Literal

from blurcore import imageio
from blurcore.errors import ArchiveEntryError, ArchiveTooLargeError
from blurcore.video.containers import SNIFFED_BYTES, ContainerKind, container_kind, named_container

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_ZIP_ENTRY_BYTES = 256 * 1024 * 1024
ZIP_ENCRYPTED_FLAG = 0x1
# The methods whose reads zipfile bounds: it inflates a deflated entry a chunk at a time and stops
# at the declared size. A bzip2 chunk is decompressed whole first: an entry of 750 bytes that
# declares 16 took 2 GB of memory to read 17 bytes of (measured), so only these are read.
READABLE_COMPRESSIONS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
# Photos are already compressed: a ZIP entry that inflates a hundredfold is a bomb, not a photo.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_FROM_BYTES = 1024 * 1024
# A whole batch of photos inflates barely more than 1:1, so ten times the upload is generous; the
# floor leaves room for small ZIPs of text and other files that compress well.
MAX_BATCH_INFLATION_RATIO = 10
MIN_INFLATION_BUDGET = 32 * 1024 * 1024
ZIP_ARCHIVE_SUFFIXES = frozenset({".zip", ".jar", ".7z", ".rar", ".gz", ".tar", ".tgz"})
# What zipfile raises for one entry it cannot extract: bad CRC or local header, corrupt or truncated
# compressed data, a compression method it lacks.
_ZIP_ENTRY_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
_INFLATE_CHUNK_BYTES = 1024 * 1024
# An entry's local header: its signature, then fixed fields, the last two the lengths of the
# name and the extra field that come between it and the entry's data.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")

Status = Literal["done", "failed", "skipped"]
EntryKind = Literal["image"] | ContainerKind  # what a ZIP entry is tried as (``entry_kind``)


def is_image_candidate(name: str, data: bytes) -> bool:
    """Named like an image or starting like one: worth trying (and failing loudly if it is not).
    Anything else, such as a README in a ZIP, is skipped rather than reported as broken."""
    return _named_like_image(name) or imageio.sniff_format(data) is not None


def _named_like_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def entry_kind(archive: zipfile.ZipFile, entry: "JudgedEntry") -> EntryKind | None:
    """What an entry still in its ZIP is worth trying as: an image (``is_image_candidate``), a
    video of the container its first bytes announce (else of the one its name says: a damaged
    video fails loudly rather than being skipped), or neither. Reads one short prefix
    (``SNIFFED_BYTES``) of entries not named like images, never a whole entry;
    ArchiveEntryError when even that cannot be read."""
    if _named_like_image(entry.name):
        return "image"
    try:
        with archive.open(entry.info) as stream:
            head = stream.read(SNIFFED_BYTES)
    except _ZIP_ENTRY_ERRORS as error:
        raise ArchiveEntryError(f"unreadable entry: {error}") from error
    if imageio.sniff_format(head) is not None:
        return "image"
    return container_kind(head) or named_container(entry.name)


def declared_inflation(archive: zipfile.ZipFile) -> int:
    """The bytes every file of ``archive`` inflates to by its central directory: the most that
    reading them can inflate, as no entry is read past its declared size (``read_entry``)."""
    return sum(info.file_size for info in archive.infolist() if not info.is_dir())


def inflation_budget(compressed_bytes: int, ceiling: int) -> int:
    """The most bytes a ZIP of ``compressed_bytes`` may inflate to, all entries together."""
    return min(ceiling, max(MIN_INFLATION_BUDGET, MAX_BATCH_INFLATION_RATIO * compressed_bytes))


def _safe_entry_name(info: zipfile.ZipInfo) -> str | None:
    """The entry's path if it stays inside the archive wherever it is extracted: no absolute
    path, no ``..``, no drive letter (``C:x.jpg`` is relative to drive C's current folder)."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if (
        path.is_absolute()
        or ".." in path.parts
        or not path.parts
        or _DRIVE_LETTER.match(path.parts[0])
    ):
        return None
    return str(path)


def _collision_key(name: str) -> str:
    """Names that Windows and macOS file systems treat as one file (case, Unicode form)."""
    return unicodedata.normalize("NFC", name).casefold()


@dataclass(frozen=True)
class EntryLocation:
    """Where an entry's data lies in its ZIP and what the central directory declares of it:
    all ``read_entry`` needs, so a reader of one entry never parses the whole directory again
    (25 ms an entry of a ZIP of 5,000, measured)."""

    header_offset: int
    compress_type: int
    compress_size: int
    file_size: int
    crc: int

    @classmethod
    def of(cls, info: zipfile.ZipInfo) -> "EntryLocation":
        return cls(
            info.header_offset, info.compress_type, info.compress_size, info.file_size, info.CRC
        )

    def zip_info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name)
        info.header_offset, info.compress_type = self.header_offset, self.compress_type
        info.compress_size, info.file_size, info.CRC = self.compress_size, self.file_size, self.crc
        return info


@dataclass(frozen=True)
class JudgedEntry:
    """One file of a ZIP as its central directory describes it, with the verdict that keeps it
    from being anonymized, or none when it may be read."""

    info: zipfile.ZipInfo
    name: str
    status: Status | None = None
    error: str | None = None


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of a ZIP: its bytes, or the verdict that keeps it from being anonymized."""

    name: str
    data: bytes | None
    status: Status | None = None
    error: str | None = None


class _InflationMeter:
    """Counts the bytes actually inflated out of one archive against its budget, a chunk at a
    time, so the budget holds whatever sizes the headers declare."""

    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self.inflated = 0

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        chunks = []
        with archive.open(info) as stream:
            while chunk := stream.read(_INFLATE_CHUNK_BYTES):
                self.inflated += len(chunk)
                if self.budget is not None and self.inflated > self.budget:
                    raise ArchiveTooLargeError(
                        f"the ZIP's entries inflate to more than {self.budget:,} bytes together"
                    )
                chunks.append(chunk)
        return b"".join(chunks)


def judged_entries(
    archive: zipfile.ZipFile,
    max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES,
    reserved_names: frozenset[str] = frozenset(),
) -> Iterator[JudgedEntry]:
    """Every file entry of ``archive``, judged from its central directory alone (nothing is
    inflated): unsafe, colliding, encrypted, oversized, bomb-like or unreadably compressed ones
    come with a verdict. Names in ``reserved_names`` (the caller's own files, beside the entries
    in its output) are refused like names already taken; names with control characters are
    reported with those characters escaped, so no NUL reaches a report or a database."""
    taken = {_collision_key(name): name for name in reserved_names}
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = _safe_entry_name(info)
        if _CONTROL_CHARACTER.search(info.orig_filename):
            # zipfile cuts a name at a NUL: the name it shows is not the one the archive holds.
            escaped = _escaped(info.orig_filename)
            yield JudgedEntry(info, escaped, "skipped", "control character in name")
        elif name is None:
            yield JudgedEntry(info, info.filename, "skipped", "unsafe path")
        elif verdict := _name_verdict(name, info, taken, reserved_names) or _unreadable_verdict(
            info, max_entry_bytes
        ):
            yield JudgedEntry(info, name, *verdict)
        else:
            taken[_collision_key(name)] = name
            yield JudgedEntry(info, name)


def _name_verdict(
    name: str, info: zipfile.ZipInfo, taken: dict[str, str], reserved_names: frozenset[str]
) -> tuple[Status, str] | None:
    """Why a safe name is still not anonymized: not a plain file, or one the output has."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "skipped", "symbolic link"
    if (earlier := taken.get(_collision_key(name))) is not None:
        return "skipped", _collision(name, earlier, reserved_names)
    if PurePosixPath(name).suffix.lower() in ZIP_ARCHIVE_SUFFIXES:
        return "skipped", "nested archive"
    return None


def _unreadable_verdict(info: zipfile.ZipInfo, max_entry_bytes: int) -> tuple[Status, str] | None:
    """Why an entry with a safe name may still not be read, from its central directory."""
    if info.flag_bits & ZIP_ENCRYPTED_FLAG:
        return "failed", "encrypted entry"
    if info.compress_type not in READABLE_COMPRESSIONS:
        return "failed", f"compression method {info.compress_type} (only stored or deflated)"
    if info.file_size > max_entry_bytes:
        return "failed", "entry too large"
    if info.file_size > RATIO_CHECK_FROM_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
        info.compress_size, 1
    ):
        return "failed", "suspicious compression ratio (a ZIP bomb?)"
    return None


def archive_entries(
    archive: zipfile.ZipFile,
    max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES,
    max_inflated_bytes: int | None = None,
    reserved_names: frozenset[str] = frozenset(),
) -> Iterator[ArchiveEntry]:
    """Every file entry of ``archive`` as ``judged_entries`` judges it, read when it may be; a
    damaged one comes with a verdict and no bytes, so one bad entry never stops the rest.

    Declared sizes bound each entry: zipfile stops at an entry's declared size and then checks
    its CRC, so an entry lying about its size fails instead of inflating without limit. The
    bytes inflated, counted as they come, bound them all: past ``max_inflated_bytes`` together,
    ArchiveTooLargeError.
    """
    meter = _InflationMeter(max_inflated_bytes)
    for entry in judged_entries(archive, max_entry_bytes, reserved_names):
        if entry.status is not None:
            yield ArchiveEntry(entry.name, None, entry.status, entry.error)
            continue
        try:
            yield ArchiveEntry(entry.name, meter.read(archive, entry.info))
        except _ZIP_ENTRY_ERRORS as error:
            yield ArchiveEntry(entry.name, None, "failed", f"unreadable entry: {error}")


def read_entry(archive: IO[bytes], name: str, location: EntryLocation, max_bytes: int) -> bytes:
    """The bytes of the entry ``name`` at ``location`` in ``archive`` (a seekable ZIP file),
    never more than it declares nor than ``max_bytes``: zipfile stops at the declared size and
    checks the CRC there, so an entry whose headers lie, or whose data is damaged, raises
    ArchiveEntryError with the reason instead of inflating further. The one read asks for the
    declared size and a byte: zipfile inflates as much as a read asks for (at least 4 KiB)
    before it cuts at the declared size."""
    with _entry_stream(archive, name, location, max_bytes) as stream:
        data = _entry_read(stream, location.file_size + 1)
    if len(data) > location.file_size:  # zipfile gave more than declared: never trusted further
        raise ArchiveEntryError("entry inflates beyond its declared size")
    return data


def entry_chunks(
    archive: IO[bytes], name: str, location: EntryLocation, max_bytes: int
) -> Iterator[bytes]:
    """``read_entry`` a chunk at a time, for an entry too large to hold (a video): the same
    bounds, the CRC checked at the declared size, ArchiveEntryError raised from the iteration."""
    with _entry_stream(archive, name, location, max_bytes) as stream:
        left = location.file_size
        # Each read asks for no more than the declared rest and a byte (see ``read_entry``).
        while chunk := _entry_read(stream, min(_INFLATE_CHUNK_BYTES, left + 1)):
            left -= len(chunk)
            if left < 0:
                raise ArchiveEntryError("entry inflates beyond its declared size")
            yield chunk


@contextmanager
def _entry_stream(
    archive: IO[bytes], name: str, location: EntryLocation, max_bytes: int
) -> Iterator[zipfile.ZipExtFile]:
    """The entry's inflating stream, from its local header on; its reads go through
    ``_entry_read``, which turns zipfile's errors into ArchiveEntryError."""
    info = location.zip_info(name)
    verdict = _unreadable_verdict(info, max_bytes)
    if verdict is not None:
        raise ArchiveEntryError(verdict[1])
    try:
        archive.seek(location.header_offset)
        header = archive.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or not header.startswith(_LOCAL_HEADER_SIGNATURE):
            raise zipfile.BadZipFile("no local header where the central directory says")
        name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
        archive.seek(name_length + extra_length, io.SEEK_CUR)
        stream = zipfile.ZipExtFile(archive, "r", info)
    except _ZIP_ENTRY_ERRORS as error:
        raise ArchiveEntryError(f"unreadable entry: {error}") from error
    with stream:
        yield stream


def _entry_read(stream: zipfile.ZipExtFile, size: int) -> bytes:
    try:
        return stream.read(size)
    except _ZIP_ENTRY_ERRORS as error:
        raise ArchiveEntryError(f"unreadable entry: {error}") from error


def _escaped(name: str) -> str:
    return _CONTROL_CHARACTER.sub(lambda match: f"\\x{ord(match.group()):02x}", name)


def _collision(name: str, earlier: str, reserved_names: frozenset[str]) -> str:
    if earlier in reserved_names:
        return f"the name {earlier} is reserved for a file of the output"
    if earlier == name:
        return "duplicate name"
    return f"same file as {earlier} on case-insensitive file systems"
