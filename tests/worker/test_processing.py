"""The worker's job logic against a real Redis and the real models, without Celery in between."""

import time

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded

from blurcore import AnonymizeParams
from fpg_worker.processing import JobRunner
from jobstore.blobstore import RedisBlobStore, input_key, result_key
from jobstore.metrics import MetricsStore
from jobstore.records import JobRecord, JobStatus, RecordStore


@pytest.fixture
def runner(redis_url, anonymizer) -> JobRunner:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return JobRunner(
        records=RecordStore(client, "test", 300),
        blobs=RedisBlobStore(client, "test"),
        metrics=MetricsStore(client, "test"),
        anonymizer=anonymizer,
        time_limit_errors=(SoftTimeLimitExceeded,),
    )


def _queued(runner: JobRunner, data: bytes, **params: object) -> str:
    job = JobRecord(
        id=f"{time.monotonic_ns():032x}", params=AnonymizeParams(**params), filename="x"
    )
    runner.blobs.put(input_key(job.id), data, 300)
    runner.records.create_job(job)
    return job.id


def test_run_stores_result_then_deletes_original(runner, astronaut_jpeg):
    job_id = _queued(runner, astronaut_jpeg, profile="fast")
    job = runner.run(job_id)
    assert job is not None
    assert job.status is JobStatus.DONE
    assert job.faces >= 1
    assert runner.blobs.get(result_key(job_id)) is not None
    assert runner.blobs.get(input_key(job_id)) is None


def test_run_twice_yields_one_result(runner, astronaut_jpeg):
    # A redelivered task (worker lost after finishing) must not process or count twice.
    job_id = _queued(runner, astronaut_jpeg, profile="fast")
    first = runner.run(job_id)
    result = runner.blobs.get(result_key(job_id))
    second = runner.run(job_id)
    assert first == second
    assert runner.blobs.get(result_key(job_id)) == result
    assert runner.metrics.read().finished == {"done": 1}


def test_run_of_deleted_job_stores_nothing(runner, astronaut_jpeg):
    job_id = _queued(runner, astronaut_jpeg, profile="fast")
    runner.records.delete_jobs(job_id)
    assert runner.run(job_id) is None
    assert runner.blobs.get(result_key(job_id)) is None
    assert runner.records.get_job(job_id) is None


def test_run_fails_closed_on_corrupt_image(runner):
    job_id = _queued(runner, b"\x89PNG\r\n\x1a\n broken")
    job = runner.run(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error
    assert runner.blobs.get(result_key(job_id)) is None
    assert runner.blobs.get(input_key(job_id)) is None


def test_run_over_time_limit_marks_failed_without_result(runner, astronaut_jpeg, monkeypatch):
    def too_slow(*_args: object) -> None:
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(runner.anonymizer, "process", too_slow)
    job_id = _queued(runner, astronaut_jpeg)
    job = runner.run(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert "time limit" in (job.error or "")
    assert runner.blobs.get(result_key(job_id)) is None


def test_run_of_expired_original_fails(runner, astronaut_jpeg):
    job_id = _queued(runner, astronaut_jpeg)
    runner.blobs.delete(input_key(job_id))
    job = runner.run(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert "expired" in (job.error or "")


def test_records_expire_with_their_retention(redis_url):
    records = RecordStore(redis.Redis.from_url(redis_url), "expiry", retention_seconds=1)
    job = JobRecord(id="e" * 32, params=AnonymizeParams(), filename="x")
    records.create_job(job)
    assert records.get_job(job.id) == job
    time.sleep(1.2)
    assert records.get_job(job.id) is None
    assert records.update_job(job) is False  # a late worker cannot bring it back
