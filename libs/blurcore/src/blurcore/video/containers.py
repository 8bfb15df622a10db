"""The video containers the service takes, told apart by a file's first bytes or its name:
no PyAV here, so the gateway judges uploads and ZIP entries without importing FFmpeg."""

from dataclasses import dataclass
from pathlib import PurePosixPath

SNIFFED_BYTES = 64  # a Matroska header names its kind (webm or matroska) within these


@dataclass(frozen=True)
class ContainerKind:
    suffix: str  # of the stored upload and the result; the worker writes what it says
    content_type: str


MP4 = ContainerKind(".mp4", "video/mp4")
QUICKTIME = ContainerKind(".mov", "video/quicktime")
MATROSKA = ContainerKind(".mkv", "video/x-matroska")
WEBM = ContainerKind(".webm", "video/webm")
AVI = ContainerKind(".avi", "video/x-msvideo")
_BY_SUFFIX = {
    ".mp4": MP4,
    ".m4v": MP4,
    ".mov": QUICKTIME,
    ".mkv": MATROSKA,
    ".webm": WEBM,
    ".avi": AVI,
}
VIDEO_SUFFIXES = frozenset(_BY_SUFFIX)
# The top-level boxes an ISO media file (MP4, MOV) may open with.
_ISO_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"})


def container_kind(head: bytes) -> ContainerKind | None:
    """The container the first bytes of a file announce, or None for anything else (an image, a
    document, audio alone): those are refused before FFmpeg, which would open many of them."""
    if head[4:8] in _ISO_FIRST_BOXES:
        return QUICKTIME if head[8:12] == b"qt  " else MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or WebM, its DocType says which
        return WEBM if b"webm" in head[:SNIFFED_BYTES] else MATROSKA
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return AVI
    return None


def named_container(name: str) -> ContainerKind | None:
    """The container a file's name suffix stands for, or None for a name of no video."""
    return _BY_SUFFIX.get(PurePosixPath(name).suffix.lower())
