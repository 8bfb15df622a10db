"""A batch's progress and result ZIP from its records alone: in process, no Redis, no worker
(results in a plain directory store)."""

import io
import json
import os
import zipfile

import pytest

from blurcore import AnonymizeParams
from fpg_api.batch_report import (
    REPORT_NAME,
    BatchJobs,
    batch_progress,
    report_images,
    result_zip,
)
from jobstore.blobs import result_key
from jobstore.blobs.directory import DirectoryBlobStore
from jobstore.records import BatchEntry, BatchRecord, JobRecord, JobStatus
from jobstore.video_records import VideoRecord

REGIONS = [[10.0, 20.0, 30.0, 40.0, 0.9]]


def _job(number: int, status: JobStatus, **fields: object) -> JobRecord:
    return JobRecord(
        id=f"{number:032x}",
        params=AnonymizeParams(),
        filename=f"{number}.jpg",
        status=status,
        **fields,  # type: ignore[arg-type]
    )


def _batch(*entries: BatchEntry) -> BatchRecord:
    return BatchRecord(id="b" * 32, params=AnonymizeParams(), filename="x.zip", entries=[*entries])


@pytest.fixture
def jobs() -> dict[str, JobRecord | None]:
    done = _job(1, JobStatus.DONE, faces=2, regions=REGIONS, output_sha256="o" * 64)
    failed = _job(2, JobStatus.FAILED, error="image file is truncated")
    queued = _job(3, JobStatus.QUEUED)
    return {done.id: done, failed.id: failed, queued.id: queued, f"{4:032x}": None}


@pytest.fixture
def batch(jobs) -> BatchRecord:
    return _batch(
        *(BatchEntry(path=f"staff/{job_id[-1]}.jpg", job_id=job_id) for job_id in jobs),
        BatchEntry(path="README.txt", status="skipped", error="not an image"),
        BatchEntry(path="../escape.jpg", status="skipped", error="unsafe path"),
        BatchEntry(path="big.jpg", status="failed", error="entry too large"),
    )


def test_batch_progress_counts_every_file_and_waits_for_the_queued_job(batch, jobs):
    assert batch_progress(batch, jobs).model_dump() == {
        "id": batch.id,
        "total": 7,
        "done": 1,
        "failed": 3,  # the failed job, the job whose record expired, the failed entry
        "skipped": 2,
        "pending": 1,
        "faces": 2,
        "finished": False,
    }


def test_batch_progress_finishes_when_no_job_is_pending(batch, jobs):
    jobs[f"{3:032x}"] = _job(3, JobStatus.DONE, faces=1)
    progress = batch_progress(batch, jobs)
    assert (progress.done, progress.pending, progress.faces, progress.finished) == (2, 0, 3, True)


def test_report_images_give_every_file_its_status_and_regions(batch, jobs):
    by_path = {image.path: image for image in report_images(batch, jobs)}
    assert [image.path for image in report_images(batch, jobs)] == [e.path for e in batch.entries]
    assert by_path["staff/1.jpg"].model_dump() == {
        "path": "staff/1.jpg",
        "job_id": f"{1:032x}",
        "status": "done",
        "faces": 2,
        "boxes": REGIONS,
        "frames": None,
        "tracks": None,
        "input_sha256": None,
        "output_sha256": "o" * 64,
        "error": None,
    }
    assert (by_path["staff/2.jpg"].status, by_path["staff/2.jpg"].error) == (
        "failed",
        "image file is truncated",
    )
    assert by_path["staff/3.jpg"].status == "failed"  # not finished: never reported as done
    assert (by_path["staff/4.jpg"].status, by_path["staff/4.jpg"].error) == (
        "expired",
        "job record expired",
    )
    assert (by_path["../escape.jpg"].status, by_path["../escape.jpg"].error) == (
        "skipped",
        "unsafe path",
    )
    assert by_path["big.jpg"].status == "failed"


def test_result_zip_holds_the_done_images_under_their_paths_and_the_report(tmp_path):
    kept, lost = _job(1, JobStatus.DONE, faces=1), _job(2, JobStatus.DONE, faces=1)
    batch = _batch(
        BatchEntry(path="team/kept.jpg", job_id=kept.id),
        BatchEntry(path="team/lost.jpg", job_id=lost.id),
        BatchEntry(path="notes.txt", status="skipped", error="not an image"),
    )
    results = DirectoryBlobStore(tmp_path)
    results.put(result_key(kept.id), b"anonymized", 60)

    archive = zipfile.ZipFile(
        io.BytesIO(b"".join(result_zip(batch, {kept.id: kept, lost.id: None}, results)))
    )

    assert sorted(archive.namelist()) == [REPORT_NAME, "team/kept.jpg"]
    assert archive.read("team/kept.jpg") == b"anonymized"
    report = json.loads(archive.read(REPORT_NAME))
    assert (report["id"], report["summary"]["finished"]) == (batch.id, True)
    assert [(image["path"], image["status"]) for image in report["images"]] == [
        ("team/kept.jpg", "done"),
        ("team/lost.jpg", "expired"),
        ("notes.txt", "skipped"),
    ]


def test_result_zip_reports_a_result_that_expired_before_download(tmp_path):
    job = _job(1, JobStatus.DONE, faces=1)
    batch = _batch(BatchEntry(path="a.jpg", job_id=job.id))

    archive = zipfile.ZipFile(
        io.BytesIO(b"".join(result_zip(batch, {job.id: job}, DirectoryBlobStore(tmp_path))))
    )

    assert archive.namelist() == [REPORT_NAME]
    (image,) = json.loads(archive.read(REPORT_NAME))["images"]
    assert (image["status"], image["error"]) == ("expired", "result expired before download")


def _video(number: int, status: JobStatus, **fields: object) -> VideoRecord:
    return VideoRecord(
        id=f"{number:032x}",
        params=AnonymizeParams(),
        filename=f"{number}.mp4",
        suffix=".mp4",
        content_type="video/mp4",
        declared_frames=0,
        status=status,
        **fields,  # type: ignore[arg-type]
    )


def test_a_video_of_a_batch_is_counted_and_reported_with_its_frames_and_tracks(tmp_path):
    photo = _job(1, JobStatus.DONE, faces=1, regions=REGIONS)
    video = _video(2, JobStatus.DONE, faces=80, frames=40, tracks=2, output_sha256="v" * 64)
    running = _video(3, JobStatus.RUNNING)
    batch = _batch(
        BatchEntry(path="a.jpg", job_id=photo.id),
        BatchEntry(path="clips/b.mp4", video_id=video.id),
        BatchEntry(path="clips/c.mp4", video_id=running.id),
    )
    jobs: BatchJobs = {photo.id: photo, video.id: video, running.id: running}

    progress = batch_progress(batch, jobs)

    assert (progress.done, progress.pending, progress.faces, progress.finished) == (2, 1, 81, False)
    line = report_images(batch, jobs)[1]
    assert line.model_dump() == {
        "path": "clips/b.mp4",
        "job_id": video.id,
        "status": "done",
        "faces": 80,
        "boxes": [],
        "frames": 40,
        "tracks": 2,
        "input_sha256": None,
        "output_sha256": "v" * 64,
        "error": None,
    }


def test_result_zip_streams_a_video_a_stored_chunk_at_a_time(tmp_path):
    """A video goes into the ZIP as the store gives it: no chunk of the answer much larger than
    the store's (1 MiB), whatever the video's size."""
    video = _video(2, JobStatus.DONE, faces=1, frames=1, tracks=1)
    batch = _batch(BatchEntry(path="clips/b.mp4", video_id=video.id))
    results = DirectoryBlobStore(tmp_path)
    data = os.urandom(8 * 1024 * 1024 + 3)
    results.put(result_key(video.id), data, 60)

    chunks = list(result_zip(batch, {video.id: video}, results))

    assert max(len(chunk) for chunk in chunks) < 1024 * 1024 + 1024
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.namelist() == ["clips/b.mp4", REPORT_NAME]
    assert archive.read("clips/b.mp4") == data
