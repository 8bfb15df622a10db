"""Content hashes and the result-cache key: what the gateway needs of blurcore, with no model."""

import hashlib
import json
from pathlib import Path
from typing import BinaryIO

from blurcore.params import AnonymizeParams

_CHUNK_BYTES = 1 << 20


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256_hex(source: Path | BinaryIO) -> str:
    """``sha256_hex`` of a file's bytes, read in chunks (a video need not fit in memory); a
    file object (seekable, binary) is read from its start and left open."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            return _stream_sha256_hex(stream)
    source.seek(0)
    return _stream_sha256_hex(source)


def _stream_sha256_hex(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def cache_key(data: bytes, params: AnonymizeParams) -> str:
    """Same bytes and same parameters give the same key, so a result can be reused safely."""
    return cache_key_of_digest(sha256_hex(data), params)


def cache_key_of_digest(input_sha256: str, params: AnonymizeParams) -> str:
    """``cache_key`` from the input's SHA-256, for a caller that has it already (a result's
    ``input_sha256``), so large uploads are not hashed twice."""
    canonical = json.dumps(params.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return sha256_hex(input_sha256.encode() + b"\n" + canonical.encode())
