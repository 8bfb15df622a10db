"""A stored object as a read-only, seekable file, for readers that jump about (``zipfile`` reads
a ZIP's directory at its end, then each entry where it starts). Only the bytes asked for are
fetched: each seek starts a new read from that offset (``BlobStore.read(key, start)``)."""

import io
from collections.abc import Iterator
from typing import Any

from jobstore.blobs.base import CHUNK_BYTES, BlobStore


class BlobReader(io.RawIOBase):
    def __init__(self, store: BlobStore, key: str, size: int) -> None:
        self._store, self._key, self._size = store, key, size
        self._position = 0
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop_stream()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        if not self._pending:
            if self._chunks is None:
                chunks = self._store.read(self._key, self._position)
                if chunks is None:
                    raise FileNotFoundError(f"blob {self._key!r} expired or was deleted")
                self._chunks = chunks
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self._position += size
        return size

    def close(self) -> None:
        self._drop_stream()
        super().close()

    def _drop_stream(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        self._chunks, self._pending = None, b""


def open_blob(store: BlobStore, key: str) -> io.BufferedReader | None:
    """The object as a buffered, seekable file, or None when it is absent or expired."""
    size = store.size(key)
    return None if size is None else io.BufferedReader(BlobReader(store, key, size), CHUNK_BYTES)
