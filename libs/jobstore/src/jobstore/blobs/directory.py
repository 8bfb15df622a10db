"""Blobs as files under one directory: the default store, for one host or a volume several hosts
share (ReadWriteMany, NFS).

A write goes to a temporary name unique to its writer, is flushed to the disk (fsync) and then
renamed over the object's name: rename is atomic on a local file system and on an NFS server, so
a reader on any host sees a whole object or none, and a writer killed half-way leaves only a
temporary file, which the sweep removes. An object's expiry is its file's modification time, set
before the rename, so the expiry travels with the file and needs no second record.
"""

import os
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from jobstore.blobs.base import CHUNK_BYTES, BlobStore

TEMPORARY_SUFFIX = ".partial"
# A temporary file nobody has written to for this long belongs to a writer that died.
ABANDONED_AFTER_SECONDS = 3600


class DirectoryBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith(".") or "\0" in key:
            raise ValueError(f"not a blob key: {key!r}")
        # Two levels of fan-out keep directories small; keys start with a random job id.
        return self.root / key[:2] / key

    def write(self, key: str, chunks: Iterable[bytes], ttl_seconds: int) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_name(f".{key}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")
        try:
            with temporary.open("xb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            expires_at = time.time() + ttl_seconds
            os.utime(temporary, (expires_at, expires_at))
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)  # the rename itself survives a crash

    def read(self, key: str, start: int = 0) -> Iterator[bytes] | None:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            return None
        if _expired(os.fstat(handle.fileno()).st_mtime):
            handle.close()
            return None
        handle.seek(start)
        return _chunks_of(handle)

    def size(self, key: str) -> int | None:
        try:
            status = self._path(key).stat()
        except FileNotFoundError:
            return None
        return None if _expired(status.st_mtime) else status.st_size

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def delete(self, *keys: str) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def remove_expired(self) -> int:
        removed = 0
        abandoned_before = time.time() - ABANDONED_AFTER_SECONDS
        for path in self.root.glob("*/*"):
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:
                continue  # deleted meanwhile, by a request or another host's sweep
            if path.name.endswith(TEMPORARY_SUFFIX):
                stale = modified < abandoned_before
            else:
                stale = _expired(modified)
            if stale:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _expired(expires_at: float) -> bool:
    return expires_at <= time.time()


def _chunks_of(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
