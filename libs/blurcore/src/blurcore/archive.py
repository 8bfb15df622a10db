"""The files of a ZIP archive, each with the verdict that decides whether it may be anonymized.

Shared by the command line and the gateway, which checks an uploaded batch before queueing it;
nothing here loads a model, so the gateway imports it without the inference runtimes.
"""

import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from blurcore import imageio
from blurcore.errors import ArchiveTooLargeError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_ZIP_ENTRY_BYTES = 256 * 1024 * 1024
ZIP_ENCRYPTED_FLAG = 0x1
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
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")

Status = Literal["done", "failed", "skipped"]


def is_image_candidate(name: str, data: bytes) -> bool:
    """Named like an image or starting like one: worth trying (and failing loudly if it is not).
    Anything else, such as a README in a ZIP, is skipped rather than reported as broken."""
    return (
        PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES
        or imageio.sniff_format(data) is not None
    )


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


def archive_entries(
    archive: zipfile.ZipFile,
    max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES,
    max_inflated_bytes: int | None = None,
    reserved_names: frozenset[str] = frozenset(),
) -> Iterator[ArchiveEntry]:
    """Every file entry of ``archive``; unsafe, colliding, encrypted, oversized, bomb-like or
    damaged ones come with a verdict and no bytes, so one bad entry never stops the rest.

    Declared sizes bound each entry: zipfile stops at an entry's declared size and then checks
    its CRC, so an entry lying about its size fails instead of inflating without limit. The
    bytes inflated, counted as they come, bound them all: past ``max_inflated_bytes`` together,
    ArchiveTooLargeError. Names in ``reserved_names`` (the caller's own files, beside the entries
    in its output) are refused like names already taken; names with control characters are
    reported with those characters escaped, so no NUL reaches a report or a database.
    """
    taken = {_collision_key(name): name for name in reserved_names}
    meter = _InflationMeter(max_inflated_bytes)
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = _safe_entry_name(info)
        if _CONTROL_CHARACTER.search(info.orig_filename):
            # zipfile cuts a name at a NUL: the name it shows is not the one the archive holds.
            yield ArchiveEntry(
                _escaped(info.orig_filename), None, "skipped", "control character in name"
            )
        elif name is None:
            yield ArchiveEntry(info.filename, None, "skipped", "unsafe path")
        elif stat.S_ISLNK(info.external_attr >> 16):
            yield ArchiveEntry(name, None, "skipped", "symbolic link")
        elif (earlier := taken.get(_collision_key(name))) is not None:
            yield ArchiveEntry(name, None, "skipped", _collision(name, earlier, reserved_names))
        elif PurePosixPath(name).suffix.lower() in ZIP_ARCHIVE_SUFFIXES:
            yield ArchiveEntry(name, None, "skipped", "nested archive")
        elif info.flag_bits & ZIP_ENCRYPTED_FLAG:
            yield ArchiveEntry(name, None, "failed", "encrypted entry")
        elif info.file_size > max_entry_bytes:
            yield ArchiveEntry(name, None, "failed", "entry too large")
        elif (
            info.file_size > RATIO_CHECK_FROM_BYTES
            and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            yield ArchiveEntry(name, None, "failed", "suspicious compression ratio (a ZIP bomb?)")
        else:
            taken[_collision_key(name)] = name
            try:
                yield ArchiveEntry(name, meter.read(archive, info))
            except _ZIP_ENTRY_ERRORS as error:
                yield ArchiveEntry(name, None, "failed", f"unreadable entry: {error}")


def _escaped(name: str) -> str:
    return _CONTROL_CHARACTER.sub(lambda match: f"\\x{ord(match.group()):02x}", name)


def _collision(name: str, earlier: str, reserved_names: frozenset[str]) -> str:
    if earlier in reserved_names:
        return f"the name {earlier} is reserved for a file of the output"
    if earlier == name:
        return "duplicate name"
    return f"same file as {earlier} on case-insensitive file systems"
