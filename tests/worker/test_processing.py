"""The worker's job logic against a real Redis and the real models, without Celery in between."""

import hashlib
import time

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded

from blurcore import AnonymizeParams, Profile
from fpg_worker.processing import JobRunner
from jobstore.blobs import input_key, result_key
from jobstore.records import JobRecord, JobStatus, RecordStore

from .conftest import Killed, killed_when_deleting


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


def test_job_deleted_while_processed_leaves_no_key_behind(
    runner, redis_url, astronaut_jpeg, monkeypatch
):
    # The user deletes the job while the worker is inside process(): the finished state, the
    # cache entry and the wake-up call for waiters must not bring any key back.
    job_id = _queued(runner, astronaut_jpeg, profile="fast")
    process = runner.anonymizer.process

    def deleted_meanwhile(*args: object) -> object:
        result = process(*args)  # type: ignore[arg-type]
        runner.records.delete_jobs(job_id)
        return result

    monkeypatch.setattr(runner.anonymizer, "process", deleted_meanwhile)
    assert runner.run(job_id) is None
    client = redis.Redis.from_url(redis_url)
    assert [key for key in client.scan_iter("*") if job_id.encode() in key] == []
    assert list(client.scan_iter("test:cache:*")) == []


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


def test_a_job_whose_worker_died_on_every_start_is_failed_without_processing(
    audited, astronaut_jpeg, monkeypatch
):
    # Each earlier start counted, then its process killed before it finished.
    job_id = _queued(audited, astronaut_jpeg)
    for _start in range(audited.max_attempts):
        audited.records.count_attempt(job_id)

    def not_again(*_args: object) -> None:
        pytest.fail("a job that killed every worker it ran on must not be processed again")

    monkeypatch.setattr(audited.anonymizer, "process", not_again)
    job = audited.run(job_id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.FAILED, audited.max_attempts + 1)
    assert f"died {audited.max_attempts} times" in (job.error or "")
    assert audited.blobs.get(input_key(job_id)) is None
    assert audited.audit is not None
    image, deleted = audited.audit.records()
    assert (image.outcome, image.reason) == ("failed", job.error)
    assert image.input_sha256 == hashlib.sha256(astronaut_jpeg).hexdigest()
    assert deleted.event == "original_deleted"


def test_a_worker_killed_just_before_marking_done_is_redone_on_redelivery(
    runner, astronaut_jpeg, monkeypatch
):
    # Killed after storing the result but before the record says done: the redelivered task
    # must finish the job, not fail it for want of an original already deleted.
    job_id = _queued(runner, astronaut_jpeg, profile="fast")
    finish_job = runner.records.finish_job

    def killed(*_args: object) -> bool:
        raise Killed

    monkeypatch.setattr(runner.records, "finish_job", killed)
    with pytest.raises(Killed):
        runner.run(job_id)
    monkeypatch.setattr(runner.records, "finish_job", finish_job)
    job = runner.run(job_id)
    assert job is not None
    assert job.status is JobStatus.DONE, job.error
    assert runner.blobs.get(result_key(job_id)) is not None
    assert runner.blobs.get(input_key(job_id)) is None


def test_a_redelivered_finished_job_leaves_no_original(runner, astronaut_jpeg, monkeypatch):
    # Killed after the record says done but before the original was deleted.
    job_id = _queued(runner, astronaut_jpeg, profile="fast")
    with (
        killed_when_deleting(monkeypatch, runner.blobs, input_key(job_id)),
        pytest.raises(Killed),
    ):
        runner.run(job_id)
    job = runner.run(job_id)
    assert job is not None
    assert job.status is JobStatus.DONE
    assert runner.blobs.get(input_key(job_id)) is None


def test_records_expire_with_their_retention(redis_url):
    records = RecordStore(redis.Redis.from_url(redis_url), "expiry", retention_seconds=1)
    job = JobRecord(id="e" * 32, params=AnonymizeParams(), filename="x")
    records.create_job(job)
    assert records.get_job(job.id) == job
    time.sleep(1.2)
    assert records.get_job(job.id) is None
    assert records.update_job(job) is False  # a late worker cannot bring it back


def test_run_writes_the_image_record_and_the_original_deletion(audited, astronaut_jpeg):
    job_id = _queued(audited, astronaut_jpeg, profile="fast")
    job = audited.run(job_id)
    assert job is not None
    image, original = audited.audit.records()
    assert (image.event, image.outcome, original.event) == ("image", "done", "original_deleted")
    assert image.job_id == original.job_id == job_id
    assert image.input_sha256 == hashlib.sha256(astronaut_jpeg).hexdigest()
    assert image.output_sha256 == hashlib.sha256(audited.blobs.get(result_key(job_id))).hexdigest()
    assert image.faces == job.faces
    assert image.boxes == job.regions
    detectors = audited.anonymizer.finder.detectors_for(Profile.FAST)
    assert image.detectors == {d.name: d.model_sha256 for d in detectors}
    assert image.params == AnonymizeParams(profile="fast").model_dump(mode="json")
    assert image.result_expires_at is not None
    assert audited.audit.verify().ok


def test_a_failed_image_is_audited_with_its_reason_and_input_hash(audited):
    data = b"\x89PNG\r\n\x1a\n broken"
    job_id = _queued(audited, data)
    audited.run(job_id)
    image, original = audited.audit.records()
    assert (image.outcome, original.event) == ("failed", "original_deleted")
    assert image.reason
    assert image.input_sha256 == hashlib.sha256(data).hexdigest()
    assert image.output_sha256 is None
    assert image.boxes is None


def test_a_run_of_a_deleted_job_audits_the_discarded_result(audited, astronaut_jpeg, monkeypatch):
    job_id = _queued(audited, astronaut_jpeg, profile="fast")
    original_process = audited.anonymizer.process

    def delete_meanwhile(data: bytes, params: AnonymizeParams) -> object:
        result = original_process(data, params)
        audited.records.delete_jobs(job_id)  # the user's DELETE arrives while it runs
        return result

    monkeypatch.setattr(audited.anonymizer, "process", delete_meanwhile)
    assert audited.run(job_id) is None
    assert audited.blobs.get(result_key(job_id)) is None
    assert [r.event for r in audited.audit.records()] == [
        "image",
        "original_deleted",
        "result_deleted",
    ]
