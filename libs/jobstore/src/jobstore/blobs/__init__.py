"""Payload storage: one interface (``base``), a directory store, an S3-compatible store, and the
encryption that wraps either (``sealing``). ``FPG_BLOB_URL`` picks the store."""

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import redis

from jobstore.blobs.base import BlobStore, archive_key, input_key, report_key, result_key
from jobstore.blobs.directory import DirectoryBlobStore
from jobstore.blobs.s3 import S3BlobStore
from jobstore.blobs.sealing import DataKeys, SealedBlobStore

__all__ = [
    "BlobStore",
    "SealedBlobStore",
    "archive_key",
    "input_key",
    "open_blob_store",
    "report_key",
    "result_key",
]


def store_at(url: str) -> BlobStore:
    """The plain (unencrypted) store ``url`` names: ``file:PATH``, ``file:///PATH``, or
    ``s3://BUCKET/PREFIX`` (``?sse=AES256`` or ``?sse=aws:kms`` asks the server to encrypt too;
    endpoint, region and credentials come from boto3's environment variables)."""
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.path:
        return DirectoryBlobStore(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "s3" and parsed.netloc:
        sse = parse_qs(parsed.query).get("sse", [None])[0]
        return S3BlobStore(parsed.netloc, parsed.path, server_side_encryption=sse)
    raise ValueError(f"FPG_BLOB_URL: no blob store for {url!r} (file:PATH or s3://BUCKET/PREFIX)")


def open_blob_store(url: str, client: redis.Redis, prefix: str) -> SealedBlobStore:
    """The store ``url`` names, every object in it encrypted with a key kept in Redis."""
    return SealedBlobStore(store_at(url), DataKeys(client, prefix))
