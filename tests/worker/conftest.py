"""The worker's job logic against a real Redis, a real blob directory and the real models."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded

from fpg_audit import AuditStore
from fpg_worker.processing import JobRunner
from jobstore.blobs import SealedBlobStore, open_blob_store
from jobstore.metrics import MetricsStore
from jobstore.records import RecordStore


class Killed(BaseException):
    """What a SIGKILL looks like from inside: the run stops there, no handler runs."""


@contextmanager
def killed_when_deleting(
    monkeypatch: pytest.MonkeyPatch, blobs: SealedBlobStore, key: str
) -> Iterator[None]:
    """Within, a run that deletes ``key`` is killed there (``Killed``); after, deletes work."""
    delete = blobs.delete

    def killed(*keys: str) -> None:
        if key in keys:
            raise Killed
        delete(*keys)

    monkeypatch.setattr(blobs, "delete", killed)
    try:
        yield
    finally:
        monkeypatch.setattr(blobs, "delete", delete)


@pytest.fixture
def runner(redis_url, anonymizer, tmp_path) -> JobRunner:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return JobRunner(
        records=RecordStore(client, "test", 300),
        blobs=open_blob_store(f"file:{tmp_path}/blobs", client, "test"),
        metrics=MetricsStore(client, "test"),
        anonymizer=anonymizer,
        time_limit_errors=(SoftTimeLimitExceeded,),
    )


@pytest.fixture
def audited(runner, tmp_path) -> JobRunner:
    runner.audit = AuditStore.connect(f"sqlite:///{tmp_path}/audit.db")
    return runner
