"""A batch's progress and its result: the anonymized images under their paths in the ZIP, and
``report.json`` accounting for every file of the upload. Pure but for reading the results."""

import io
import json
import zipfile

from fpg_api.schemas import BatchProgress, BatchReportImage, BatchResultReport
from jobstore.blobs import BlobStore, result_key
from jobstore.records import FINISHED, BatchEntry, BatchRecord, JobRecord, JobStatus

REPORT_NAME = "report.json"  # at the root of the result ZIP, beside the images

# A batch's jobs by id; None for a job whose record expired.
BatchJobs = dict[str, JobRecord | None]


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
    if entry.job_id is None:
        assert entry.status is not None  # a file that is no job was skipped or failed
        return BatchReportImage(path=entry.path, status=entry.status, error=entry.error)
    job = jobs.get(entry.job_id)
    if job is None:
        return BatchReportImage(path=entry.path, status="expired", error="job record expired")
    return BatchReportImage(
        path=entry.path,
        job_id=job.id,
        status=job.status.value if job.status in FINISHED else "failed",
        faces=job.faces,
        boxes=job.regions,
        input_sha256=job.input_sha256,
        output_sha256=job.output_sha256,
        error=job.error,
    )


def result_zip(batch: BatchRecord, jobs: BatchJobs, results: BlobStore) -> bytes:
    """The finished batch as a ZIP; a result that expired meanwhile is reported as such."""
    images = report_images(batch, jobs)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for image, entry in zip(images, batch.entries, strict=True):
            if image.status != "done" or entry.job_id is None:
                continue
            data = results.get(result_key(entry.job_id))
            if data is None:
                image.status, image.error = "expired", "result expired before download"
                continue
            archive.writestr(entry.path, data)
        report = BatchResultReport(
            id=batch.id, params=batch.params, summary=batch_progress(batch, jobs), images=images
        )
        archive.writestr(REPORT_NAME, json.dumps(report.model_dump(mode="json"), indent=2))
    return buffer.getvalue()
