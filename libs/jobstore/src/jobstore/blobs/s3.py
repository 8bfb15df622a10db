"""Blobs as objects in an S3-compatible bucket, for clusters: ``s3://BUCKET/PREFIX``.

boto3, not obstore: botocore's ``standard`` retry mode (exponential backoff with jitter on
throttling, 5xx and connection errors) and s3transfer's multipart upload from a non-seekable
stream come with it, it reads every setting S3-compatible servers need from the usual
environment (``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID`` ...), and it is the
client the test server (moto) is built against. obstore would be faster per request, but this
store's cost is the upload itself, not the client.

An object's expiry is stored in its metadata and checked on every read; the sweep removes
expired objects, and a bucket lifecycle rule (docs/deployment.md) is the backstop. S3 makes a
PUT or a completed multipart upload visible whole, so a reader never sees part of an object.
"""

import io
import time
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from jobstore.blobs.base import CHUNK_BYTES, BlobStore

PART_BYTES = 8 * 1024 * 1024  # multipart above this; each part held in memory while it is sent
TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=2
)
RETRIES = Config(
    retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60
)
EXPIRES_AT = "expires-at"  # metadata: Unix time after which the object is no longer served
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


class S3BlobStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        server_side_encryption: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._encryption = (
            {"ServerSideEncryption": server_side_encryption} if server_side_encryption else {}
        )
        self._client = client or boto3.client("s3", config=RETRIES)

    def _name(self, key: str) -> str:
        return self.prefix + key

    def write(self, key: str, chunks: Iterable[bytes], ttl_seconds: int) -> None:
        metadata = {EXPIRES_AT: f"{time.time() + ttl_seconds:.3f}"}
        # Buffered: s3transfer takes a short read for the end of the stream, and would then
        # send the whole object in one PUT instead of in parts.
        self._client.upload_fileobj(
            io.BufferedReader(_ChunkReader(iter(chunks)), CHUNK_BYTES),
            self.bucket,
            self._name(key),
            ExtraArgs={"Metadata": metadata, **self._encryption},
            Config=TRANSFER,
        )

    def read(self, key: str, start: int = 0) -> Iterator[bytes] | None:
        byte_range = {"Range": f"bytes={start}-"} if start else {}
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._name(key), **byte_range)
        except ClientError as error:
            if _not_found(error):
                return None
            raise
        if _expired(answer["Metadata"]):
            answer["Body"].close()
            return None
        return _chunks_of(answer["Body"])

    def size(self, key: str) -> int | None:
        head = self._head(self._name(key))
        return None if head is None or _expired(head["Metadata"]) else int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def delete(self, *keys: str) -> None:
        names = [self._name(key) for key in keys]
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
            )

    def remove_expired(self) -> int:
        """A HEAD per object (listings carry no metadata): fine for the objects of one retention
        period; the lifecycle rule keeps the bucket bounded should the sweep fall behind."""
        expired = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for entry in page.get("Contents", []):
                head = self._head(entry["Key"])
                if head is not None and _expired(head["Metadata"]):
                    expired.append(entry["Key"])
        for start in range(0, len(expired), DELETE_BATCH):
            self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in expired[start : start + DELETE_BATCH]]},
            )
        return len(expired)

    def _head(self, name: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _not_found(error):
                return None
            raise
        return head


def _not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


def _expired(metadata: dict[str, str]) -> bool:
    # An object without an expiry was not written by this store: never served.
    return float(metadata.get(EXPIRES_AT, 0)) <= time.time()


def _chunks_of(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


class _ChunkReader(io.RawIOBase):
    """Chunks as a non-seekable file, which s3transfer reads one part at a time."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
