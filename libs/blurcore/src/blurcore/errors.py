"""Errors a caller can turn into a precise message (the gateway maps them to 4xx answers)."""


class BlurcoreError(Exception):
    """Base class: the input cannot be anonymized, and no output was produced."""


class UnsupportedImageError(BlurcoreError):
    """The bytes are not an image this library reads (wrong type, truncated, corrupt, empty)."""


class AnimatedImageError(UnsupportedImageError):
    """An animated PNG or WebP: only still images are anonymized. Its first frame alone would
    come back, the rest silently gone, and the user would not know."""


class ImageTooLargeError(BlurcoreError):
    """The image declares more pixels than allowed (a decompression bomb, or simply too big)."""


class ArchiveTooLargeError(BlurcoreError):
    """A ZIP's entries inflate to more bytes than allowed, whatever its headers declare."""


class ArchiveEntryError(BlurcoreError):
    """One entry of a ZIP cannot be read: its headers lie, its data is damaged, or it is
    encrypted, compressed in a way not read, or larger than allowed."""


class UnsupportedVideoError(BlurcoreError):
    """The file is not a video this library reads (no video stream, truncated, corrupt), or it
    decoded with errors part of the way through: no output is written in either case."""


class VideoTooLargeError(BlurcoreError):
    """The video's frames declare more pixels than allowed, or it lasts longer than allowed."""
