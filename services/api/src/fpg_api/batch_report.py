"""A batch's progress and its result: the anonymized images and videos under their paths in the
ZIP, and ``report.json`` accounting for every file of the upload. Pure but for reading the
results, which stream into the ZIP a chunk at a time: a video is never held whole."""

import json
import time
import zipfile
from collections.abc import Iterator

from fpg_api.schemas import BatchProgress, BatchReportImage, BatchResultReport
from jobstore.blobs import BlobStore, result_key
from jobstore.records import FINISHED, BatchEntry, BatchRecord, JobRecord, JobStatus
from jobstore.video_records import VideoRecord

REPORT_NAME = "report.json"  # at the root of the result ZIP, beside the images

# A batch's jobs and videos by id; None for one whose record expired.
BatchJobs = dict[str, JobRecord | VideoRecord | None]


def batch_progress(batch: BatchRecord, jobs: BatchJobs) -> BatchProgress:
    statuses = [job.status if job else JobStatus.FAILED for job in jobs.values()]
    done = statuses.count(JobStatus.DONE)
    failed = statuses.count(JobStatus.FAILED) + sum(
        1 for entry in batch.entries if entry.status == "failed"
    )
    skipped = sum(1 for entry in batch.entries if entry.status == "skipped")
    pending = len(statuses) - done - statuses.count(JobStatus.FAILED)
    return BatchProgress(
        id=batch.id,
        total=len(batch.entries),
        done=done,
        failed=failed,
        skipped=skipped,
        pending=pending,
        faces=sum(job.faces or 0 for job in jobs.values() if job),
        finished=pending == 0,
    )


def report_images(batch: BatchRecord, jobs: BatchJobs) -> list[BatchReportImage]:
    """One line per file of the upload, in the ZIP's order."""
    return [_report_image(entry, jobs) for entry in batch.entries]


def _report_image(entry: BatchEntry, jobs: BatchJobs) -> BatchReportImage:
    upload_id = entry.job_id or entry.video_id
    if upload_id is None:
        assert entry.status is not None  # a file that is neither job nor video was left out
        return BatchReportImage(path=entry.path, status=entry.status, error=entry.error)
    upload = jobs.get(upload_id)
    if upload is None:
        return BatchReportImage(path=entry.path, status="expired", error="job record expired")
    line = BatchReportImage(
        path=entry.path,
        job_id=upload.id,
        status=upload.status.value if upload.status in FINISHED else "failed",
        faces=upload.faces,
        input_sha256=upload.input_sha256,
        output_sha256=upload.output_sha256,
        error=upload.error,
    )
    if isinstance(upload, JobRecord):
        line.boxes = upload.regions
    else:
        line.frames, line.tracks = upload.frames, upload.tracks
    return line


class _Spool:
    """Where the result ZIP is written: what it holds is taken out after every write, and it
    cannot seek, so zipfile writes each member's sizes after its data (a data descriptor)."""

    def __init__(self) -> None:
        self._written: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._written.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def taken(self) -> bytes:
        data = b"".join(self._written)
        self._written.clear()
        return data


def result_zip(batch: BatchRecord, jobs: BatchJobs, results: BlobStore) -> Iterator[bytes]:
    """The finished batch as a ZIP, a stored chunk of a result at a time; a result that expired
    meanwhile is reported as such."""
    images = report_images(batch, jobs)
    spool = _Spool()
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED) as archive:
        for image, entry in zip(images, batch.entries, strict=True):
            upload_id = entry.job_id or entry.video_id
            if image.status != "done" or upload_id is None:
                continue
            size, chunks = results.size(result_key(upload_id)), results.read(result_key(upload_id))
            if size is None or chunks is None:
                image.status, image.error = "expired", "result expired before download"
                continue
            member = zipfile.ZipInfo(entry.path, time.localtime()[:6])
            member.file_size = size  # so zipfile knows whether the member needs ZIP64
            with archive.open(member, "w") as stored:
                for chunk in chunks:
                    stored.write(chunk)
                    yield spool.taken()
        report = BatchResultReport(
            id=batch.id, params=batch.params, summary=batch_progress(batch, jobs), images=images
        )
        archive.writestr(REPORT_NAME, json.dumps(report.model_dump(mode="json"), indent=2))
    yield spool.taken()
