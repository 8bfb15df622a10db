"""Every blob store the service can run on, each against real parts: a real directory, a real
Redis for the data keys (and, for S3, a real S3-compatible server the tests start)."""

import uuid
from collections.abc import Callable

import pytest
import redis

from jobstore.blobs import BlobStore
from jobstore.blobs.directory import DirectoryBlobStore
from jobstore.blobs.sealing import DataKeys, SealedBlobStore


@pytest.fixture
def data_keys(redis_url) -> DataKeys:
    return DataKeys(redis.Redis.from_url(redis_url), f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def directory_store(tmp_path) -> DirectoryBlobStore:
    return DirectoryBlobStore(tmp_path / "blobs")


STORES: dict[str, Callable[[pytest.FixtureRequest], BlobStore]] = {
    "directory": lambda request: request.getfixturevalue("directory_store"),
    "sealed-directory": lambda request: SealedBlobStore(
        request.getfixturevalue("directory_store"), request.getfixturevalue("data_keys")
    ),
}


@pytest.fixture(params=sorted(STORES))
def store(request) -> BlobStore:
    return STORES[request.param](request)
