"""The files of a ZIP archive, each with the verdict that decides whether it may be anonymized.

Shared by the command line and the gateway, which checks an uploaded batch before queueing it;
nothing here loads a model, so the gateway imports it without the inference runtimes.
"""

import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from blurcore import imageio

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_ZIP_ENTRY_BYTES = 256 * 1024 * 1024
ZIP_ENCRYPTED_FLAG = 0x1
# Photos are already compressed: a ZIP entry that inflates a hundredfold is a bomb, not a photo.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_FROM_BYTES = 1024 * 1024
ZIP_ARCHIVE_SUFFIXES = frozenset({".zip", ".jar", ".7z", ".rar", ".gz", ".tar", ".tgz"})
# What zipfile raises for one entry it cannot extract: bad CRC or local header, corrupt or truncated
# compressed data, a compression method it lacks.
_ZIP_ENTRY_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)

Status = Literal["done", "failed", "skipped"]


def is_image_candidate(name: str, data: bytes) -> bool:
    """Named like an image or starting like one: worth trying (and failing loudly if it is not).
    Anything else, such as a README in a ZIP, is skipped rather than reported as broken."""
    return (
        PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES
        or imageio.sniff_format(data) is not None
    )


def _safe_entry_name(info: zipfile.ZipInfo) -> str | None:
    """The entry's path if it stays inside the archive (no absolute path, no ``..``)."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return str(path)


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of a ZIP: its bytes, or the verdict that keeps it from being anonymized."""

    name: str
    data: bytes | None
    status: Status | None = None
    error: str | None = None


def archive_entries(
    archive: zipfile.ZipFile, max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES
) -> Iterator[ArchiveEntry]:
    """Every file entry of ``archive``; unsafe, duplicate, encrypted, oversized, bomb-like or
    damaged ones come with a verdict and no bytes, so one bad entry never stops the rest.

    Declared sizes bound what is read: zipfile stops at an entry's declared size and then checks
    its CRC, so an entry lying about its size fails instead of inflating without limit.
    """
    seen: set[str] = set()
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = _safe_entry_name(info)
        if name is None:
            yield ArchiveEntry(info.filename, None, "skipped", "unsafe path")
        elif stat.S_ISLNK(info.external_attr >> 16):
            yield ArchiveEntry(name, None, "skipped", "symbolic link")
        elif name in seen:
            yield ArchiveEntry(name, None, "skipped", "duplicate name")
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
            seen.add(name)
            try:
                yield ArchiveEntry(name, archive.read(info))
            except _ZIP_ENTRY_ERRORS as error:
                yield ArchiveEntry(name, None, "failed", f"unreadable entry: {error}")
