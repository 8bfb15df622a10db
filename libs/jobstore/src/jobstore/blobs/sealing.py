"""Encryption at rest that wraps any blob store: each object gets its own data key (AES-256-GCM),
kept in Redis beside the job record with the object's time-to-live, never beside the object.

Destroying the key destroys the object: a copy left on a disk, in a snapshot or a backup cannot be
decrypted once its key is deleted (DELETE) or expired (the retention). The store of objects alone,
whoever holds it, holds nothing readable.

A sealed object is ``MAGIC``, the id of its data key, then segments of ``SEGMENT_BYTES`` of
plaintext, so it streams either way. Each segment is encrypted with its index as the nonce
(unique: every version of an object has a fresh key) and the object's name plus a last-segment
flag as associated data: a segment moved to another object, reordered, dropped, or a stream cut
at a segment boundary fails authentication. The key id lets a rewrite of an object keep the old
version readable until the new one has fully replaced it.
"""

import os
from collections.abc import Iterable, Iterator

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jobstore.blobs.base import BlobStore

MAGIC = b"FPGSEAL1"
KEY_ID_BYTES = 16
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES
SEGMENT_BYTES = 1 << 20
TAG_BYTES = 16
SEALED_SEGMENT_BYTES = SEGMENT_BYTES + TAG_BYTES


class UnreadableBlobError(Exception):
    """A stored object that fails authentication: altered, truncated or not ours."""


class DataKeys:
    """Random 256-bit keys, in Redis with their object's time-to-live: one hash per object, its
    fields the key id of each version being written or stored (one, but while it is rewritten)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:datakey:"

    def create(self, key: str, ttl_seconds: int) -> tuple[bytes, bytes]:
        """A new key for a version of ``key`` about to be written: its id and the key."""
        key_id, data_key = os.urandom(KEY_ID_BYTES), AESGCM.generate_key(bit_length=256)
        with self._client.pipeline() as pipe:
            pipe.hset(self._prefix + key, key_id, data_key)
            pipe.expire(self._prefix + key, ttl_seconds)
            pipe.execute()
        return key_id, data_key

    def keep_only(self, key: str, key_id: bytes) -> None:
        """The version ``key_id`` replaced every other: their keys go."""
        others = [field for field in self._client.hkeys(self._prefix + key) if field != key_id]
        if others:
            self._client.hdel(self._prefix + key, *others)

    def forget(self, key: str, key_id: bytes) -> None:
        self._client.hdel(self._prefix + key, key_id)

    def get(self, key: str, key_id: bytes) -> bytes | None:
        data_key = self._client.hget(self._prefix + key, key_id)
        return data_key if isinstance(data_key, bytes) else None

    def exists(self, key: str) -> bool:
        return bool(self._client.exists(self._prefix + key))

    def expire(self, key: str, ttl_seconds: int) -> None:
        self._client.expire(self._prefix + key, ttl_seconds)

    def destroy(self, *keys: str) -> int:
        """Delete every key of these objects; how many objects had keys (now destroyed)."""
        return int(self._client.delete(*(self._prefix + key for key in keys))) if keys else 0


class SealedBlobStore(BlobStore):
    """``inner`` holds only ciphertext; ``keys`` decide what can still be read."""

    def __init__(self, inner: BlobStore, keys: DataKeys) -> None:
        self.inner = inner
        self.keys = keys

    def write(self, key: str, chunks: Iterable[bytes], ttl_seconds: int) -> None:
        key_id, data_key = self.keys.create(key, ttl_seconds)
        sealed = _sealed(chunks, AESGCM(data_key), key_id, key.encode())
        try:
            self.inner.write(key, sealed, ttl_seconds)
        except BaseException:
            self.keys.forget(key, key_id)
            raise
        self.keys.keep_only(key, key_id)

    def read(self, key: str, start: int = 0) -> Iterator[bytes] | None:
        """From ``start`` on, the stored object is read from the segment that holds it: a range
        of a large object costs that range, not everything before it."""
        if not self.keys.exists(key):
            return None
        sealed = self.inner.read(key)
        if sealed is None:
            return None
        header, rest = _split_header(sealed)
        data_key = self.keys.get(key, header[len(MAGIC) :])
        if data_key is None:
            _close(sealed)  # started, so closing it releases the file or connection now
            return None  # destroyed meanwhile: gone for good
        first_segment = start // SEGMENT_BYTES
        if first_segment > 0:
            _close(sealed)
            rest = self.inner.read(
                key, HEADER_BYTES + first_segment * SEALED_SEGMENT_BYTES
            ) or iter(())
        plain = _opened(rest, AESGCM(data_key), key.encode(), first_segment)
        return _skipped(plain, start - first_segment * SEGMENT_BYTES)

    def size(self, key: str) -> int | None:
        sealed = self.inner.size(key) if self.keys.exists(key) else None
        if sealed is None or sealed < HEADER_BYTES + TAG_BYTES:
            return None
        body = sealed - HEADER_BYTES
        segments = -(-body // SEALED_SEGMENT_BYTES)  # the last one may be short, never empty
        return body - segments * TAG_BYTES

    def exists(self, key: str) -> bool:
        return self.keys.exists(key) and self.inner.exists(key)

    def delete(self, *keys: str) -> None:
        self.destroy_keys(*keys)
        self.inner.delete(*keys)

    def destroy_keys(self, *keys: str) -> int:
        """Make these objects unreadable for good, wherever a copy of them lies; how many had
        keys. Their ciphertext is removed by ``delete`` or the sweep."""
        return self.keys.destroy(*keys)

    def readable_for(self, key: str, ttl_seconds: int) -> None:
        """Make the object unreadable ``ttl_seconds`` from now (its data key expires then), when
        that is known only after it was written; its ciphertext stays until its own time-to-live
        ends, then the sweep removes it."""
        self.keys.expire(key, ttl_seconds)

    def remove_expired(self) -> int:
        return self.inner.remove_expired()


def _split_header(sealed: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The object's header, checked, and an iterator over what follows it."""
    head = bytearray()
    for chunk in sealed:
        head += chunk
        if len(head) >= HEADER_BYTES:
            break
    if len(head) < HEADER_BYTES or not head.startswith(MAGIC):
        raise UnreadableBlobError("not a sealed blob")
    return bytes(head[:HEADER_BYTES]), _prepended(bytes(head[HEADER_BYTES:]), sealed)


def _prepended(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield first
        yield from rest
    finally:
        _close(rest)


def _close(chunks: Iterator[bytes]) -> None:
    """Release what an unfinished read holds (a file, a connection) now, not at collection."""
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _skipped(chunks: Iterator[bytes], skip: int) -> Iterator[bytes]:
    try:
        for chunk in chunks:
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0
    finally:
        _close(chunks)


def _associated_data(key: bytes, last: bool) -> bytes:
    return key + (b"\x01" if last else b"\x00")


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _segments(chunks: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """The bytes of ``chunks`` cut into ``size``-byte segments, each with whether it is the
    last; a full segment is kept back until more arrives, so only the last one (shorter, or even
    empty) is flagged last."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) > size:
            yield bytes(pending[:size]), False
            del pending[:size]
    yield bytes(pending), True


def _sealed(chunks: Iterable[bytes], cipher: AESGCM, key_id: bytes, key: bytes) -> Iterator[bytes]:
    yield MAGIC + key_id
    for index, (segment, last) in enumerate(_segments(chunks, SEGMENT_BYTES)):
        yield cipher.encrypt(_nonce(index), segment, _associated_data(key, last=last))


def _opened(sealed: Iterator[bytes], cipher: AESGCM, key: bytes, index: int = 0) -> Iterator[bytes]:
    """Decrypt segments ``index``, ``index + 1``, ... to the last."""
    try:
        for offset, (segment, last) in enumerate(_segments(sealed, SEALED_SEGMENT_BYTES)):
            yield cipher.decrypt(_nonce(index + offset), segment, _associated_data(key, last=last))
    except InvalidTag as error:
        raise UnreadableBlobError(f"blob {key.decode()!r} failed authentication") from error
    finally:
        _close(sealed)
