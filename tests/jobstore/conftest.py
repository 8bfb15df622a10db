"""Every blob store the service can run on, each against real parts: a real directory, a real
Redis for the data keys, and an S3-compatible server (``s3_endpoint``, tests/conftest.py)."""

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import redis

from jobstore.blobs import BlobStore
from jobstore.blobs.directory import DirectoryBlobStore
from jobstore.blobs.s3 import RETRIES, S3BlobStore
from jobstore.blobs.sealing import DataKeys, SealedBlobStore

from ..conftest import S3_CREDENTIALS


@pytest.fixture
def s3_client(s3_endpoint) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, config=RETRIES, **S3_CREDENTIALS)


@pytest.fixture
def s3_store(s3_client) -> S3BlobStore:
    bucket = f"fpg-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    return S3BlobStore(bucket, "blobs/", client=s3_client)


@pytest.fixture
def data_keys(redis_url) -> DataKeys:
    return DataKeys(redis.Redis.from_url(redis_url), f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def directory_store(tmp_path) -> DirectoryBlobStore:
    return DirectoryBlobStore(tmp_path / "blobs")


def _sealed(plain: str) -> Callable[[pytest.FixtureRequest], BlobStore]:
    return lambda request: SealedBlobStore(
        request.getfixturevalue(plain), request.getfixturevalue("data_keys")
    )


STORES: dict[str, Callable[[pytest.FixtureRequest], BlobStore]] = {
    "directory": lambda request: request.getfixturevalue("directory_store"),
    "sealed-directory": _sealed("directory_store"),
    "s3": lambda request: request.getfixturevalue("s3_store"),
    "sealed-s3": _sealed("s3_store"),
}


@pytest.fixture(params=sorted(STORES))
def store(request) -> BlobStore:
    return STORES[request.param](request)
