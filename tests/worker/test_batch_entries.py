"""Jobs of a batch read their images out of the batch's stored ZIP (real Redis, a real blob
directory, the real models): each reads its own entry, a lying entry fails alone, and the ZIP
stays until every job is counted off, once each, whatever is redelivered or killed."""

import io
import struct
import uuid
import zipfile

import pytest

from blurcore import AnonymizeParams
from blurcore.archive import EntryLocation
from fpg_worker.processing import JobRunner
from jobstore.blobs import archive_key, input_key, result_key
from jobstore.records import (
    ArchiveEntryRef,
    BatchEntry,
    BatchRecord,
    JobRecord,
    JobStatus,
)

from ..conftest import zip_of
from .conftest import Killed, killed_when_deleting

MAX_IMAGE_BYTES = 5 * 1024 * 1024


def _queued_batch(runner: JobRunner, upload: bytes) -> tuple[str, list[str]]:
    """``upload`` stored and its entries queued as the gateway queues them; the batch's id and
    its jobs' ids, in the ZIP's order."""
    batch_id = uuid.uuid4().hex
    runner.blobs.put(archive_key(batch_id), upload, 300)
    with zipfile.ZipFile(io.BytesIO(upload)) as archive:
        jobs = [
            JobRecord(
                id=uuid.uuid4().hex,
                params=AnonymizeParams(profile="fast"),
                filename=info.filename,
                batch_id=batch_id,
                archive_entry=ArchiveEntryRef(
                    location=EntryLocation.of(info), max_bytes=MAX_IMAGE_BYTES
                ),
            )
            for info in archive.infolist()
        ]
    runner.records.create_jobs(jobs)
    runner.records.hold_archive(batch_id, [job.id for job in jobs])
    entries = [BatchEntry(path=job.filename, job_id=job.id) for job in jobs]
    runner.records.create_batch(
        BatchRecord(id=batch_id, params=AnonymizeParams(), filename="x.zip", entries=entries)
    )
    return batch_id, [job.id for job in jobs]


def _zip_stored(runner: JobRunner, batch_id: str) -> bool:
    return runner.blobs.exists(archive_key(batch_id))


def test_jobs_read_their_own_entries_and_the_last_destroys_the_zip(audited, astronaut_jpeg):
    batch_id, (first, last) = _queued_batch(
        audited, zip_of({"a.jpg": astronaut_jpeg, "b/c.jpg": astronaut_jpeg})
    )

    done = audited.run(first)
    assert done is not None
    assert done.status is JobStatus.DONE, done.error
    assert done.faces >= 1
    assert _zip_stored(audited, batch_id)  # the other job still needs it
    assert audited.run(last).status is JobStatus.DONE

    assert not _zip_stored(audited, batch_id)
    assert not audited.blobs.keys.exists(archive_key(batch_id))  # its data key destroyed
    for job_id in (first, last):
        assert audited.blobs.get(result_key(job_id)) is not None
        assert not audited.blobs.exists(input_key(job_id))  # never had a blob of its own
    assert [(r.event, r.job_id) for r in audited.audit.records()] == [
        ("image", first),
        ("image", last),
        ("original_deleted", first),  # the originals went with the ZIP, after the last image
        ("original_deleted", last),
        ("keys_destroyed", None),
    ]
    assert audited.audit.records()[-1].batch_id == batch_id


def test_a_job_finished_twice_counts_off_once(runner, astronaut_jpeg):
    # A redelivered task of a finished job: counted twice, the ZIP would go before the other
    # job read its entry.
    batch_id, (first, second) = _queued_batch(
        runner, zip_of({"a.jpg": astronaut_jpeg, "b.jpg": astronaut_jpeg})
    )
    runner.run(first)
    runner.run(first)
    assert _zip_stored(runner, batch_id)
    job = runner.run(second)
    assert job is not None
    assert job.status is JobStatus.DONE, job.error
    assert not _zip_stored(runner, batch_id)


def test_a_job_killed_while_processing_reads_its_entry_again_on_redelivery(
    runner, astronaut_jpeg, monkeypatch
):
    batch_id, (job_id,) = _queued_batch(runner, zip_of({"a.jpg": astronaut_jpeg}))
    process = runner.anonymizer.process

    def killed(*_args: object) -> None:
        raise Killed

    monkeypatch.setattr(runner.anonymizer, "process", killed)
    with pytest.raises(Killed):
        runner.run(job_id)
    assert _zip_stored(runner, batch_id)
    monkeypatch.setattr(runner.anonymizer, "process", process)
    job = runner.run(job_id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.DONE, 2)
    assert not _zip_stored(runner, batch_id)


def test_a_worker_killed_before_destroying_the_zip_leaves_it_to_the_redelivery(
    audited, astronaut_jpeg, monkeypatch
):
    batch_id, (job_id,) = _queued_batch(audited, zip_of({"a.jpg": astronaut_jpeg}))
    with (
        killed_when_deleting(monkeypatch, audited.blobs, archive_key(batch_id)),
        pytest.raises(Killed),
    ):
        audited.run(job_id)
    assert audited.records.get_job(job_id).status is JobStatus.DONE
    audited.run(job_id)  # the redelivered task of a finished job
    assert not _zip_stored(audited, batch_id)
    assert not audited.records.count_off(batch_id, job_id)  # released: never destroyed again
    events = [r.event for r in audited.audit.records()]
    assert events.count("image") == 1
    assert events[-2:] == ["original_deleted", "keys_destroyed"]


def test_an_entry_whose_headers_lie_fails_its_job_alone_with_the_reason(runner, astronaut_jpeg):
    # 64 MiB of zeros named like a photo, the central directory declaring 1,000 bytes: the
    # worker reads no further than that, and the CRC there tells the lie.
    upload = bytearray(
        zip_of({"good.jpg": astronaut_jpeg, "liar.jpg": bytes(64 << 20)}, zipfile.ZIP_DEFLATED)
    )
    struct.pack_into("<I", upload, upload.rindex(b"PK\x01\x02") + 24, 1000)
    batch_id, (good, liar) = _queued_batch(runner, bytes(upload))

    failed = runner.run(liar)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error == "unreadable entry: Bad CRC-32 for file 'liar.jpg'"
    assert runner.blobs.get(result_key(liar)) is None
    assert runner.run(good).status is JobStatus.DONE
    assert not _zip_stored(runner, batch_id)


def test_a_job_whose_zip_is_gone_fails_as_expired(runner, astronaut_jpeg):
    batch_id, (job_id,) = _queued_batch(runner, zip_of({"a.jpg": astronaut_jpeg}))
    runner.blobs.delete(archive_key(batch_id))
    job = runner.run(job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert "expired or was deleted" in (job.error or "")
