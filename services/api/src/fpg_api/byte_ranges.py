"""HTTP ``Range`` requests on a stored result (RFC 9110, section 14): one range of bytes, so a
client can resume a download or fetch part of a large result. Several ranges in one request or a
header this does not understand get the whole result, as the RFC allows."""

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fpg_api.errors import ApiError

_ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class ByteRange:
    first: int
    last: int  # inclusive, as Content-Range writes it

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks of ``size`` bytes, or None for the whole. 416 when it asks
    for bytes the result does not have."""
    match = _ONE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        wanted = ByteRange(max(0, size - int(last)), size - 1)
    else:
        wanted = ByteRange(int(first), min(int(last), size - 1) if last else size - 1)
    if wanted.first >= size or wanted.length <= 0:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"the result has {size:,} bytes; the range {header!r} asks for none of them",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return wanted


def limited(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    """The first ``length`` bytes of ``chunks``; the rest is never read."""
    try:
        for chunk in chunks:
            yield chunk[:length]
            length -= len(chunk)
            if length <= 0:
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
