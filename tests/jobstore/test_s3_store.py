"""What the S3 store does beyond the contract, against the S3-compatible server of conftest:
multipart uploads of large objects, none left half-done, and the store named by FPG_BLOB_URL with
its endpoint and credentials from boto3's environment and server-side encryption asked for."""

import os
from collections.abc import Iterator

import pytest

from jobstore.blobs import store_at
from jobstore.blobs.s3 import PART_BYTES, S3BlobStore

from ..conftest import S3_CREDENTIALS


def _parts(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield os.urandom(min(size, total - sent))
        sent += size


def test_a_large_object_goes_up_in_parts_and_reads_back(s3_store: S3BlobStore, s3_client):
    data = os.urandom(2 * PART_BYTES + 4321)
    s3_store.write("cc01:input", (data[i : i + 65536] for i in range(0, len(data), 65536)), 60)
    head = s3_client.head_object(Bucket=s3_store.bucket, Key="blobs/cc01:input")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    assert s3_store.get("cc01:input") == data


def test_a_failed_large_upload_leaves_no_parts_behind(s3_store: S3BlobStore, s3_client):
    def broken() -> Iterator[bytes]:
        yield from _parts(PART_BYTES + 1)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        s3_store.write("cc02:input", broken(), 60)
    uploads = s3_client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert uploads.get("Uploads", []) == []
    assert s3_store.get("cc02:input") is None


def test_the_blob_url_names_bucket_prefix_and_encryption(s3_endpoint, s3_client, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_REGION", S3_CREDENTIALS["region_name"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_CREDENTIALS["aws_secret_access_key"])
    s3_client.create_bucket(Bucket="fpg-named")

    store = store_at("s3://fpg-named/site-a/blobs?sse=AES256")
    store.put("cc03:result", b"sealed bytes", 60)

    head = s3_client.head_object(Bucket="fpg-named", Key="site-a/blobs/cc03:result")
    assert head["ServerSideEncryption"] == "AES256"
    assert store.get("cc03:result") == b"sealed bytes"
