"""What a caller submitted, once submitted: found for its owner only, waited for, served and
purged. Jobs are single images; a batch is the jobs of one ZIP."""

import time

from fastapi import Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from fpg_api.batch_report import BatchJobs
from fpg_api.byte_ranges import limited, requested_range
from fpg_api.deps import Caller, Services
from fpg_api.errors import ApiError
from jobstore import audit_events, batch_archives
from jobstore.blobs import archive_key, input_key, report_key, result_key
from jobstore.blobs.base import video_work_keys
from jobstore.records import FINISHED, BatchRecord, JobRecord, JobStatus
from jobstore.video_records import VideoRecord

WAIT_SLICE_SECONDS = 1.0


def found_job(services: Services, job_id: str, caller: Caller) -> JobRecord:
    """The job, if it exists and belongs to the caller (another key's job is as good as absent)."""
    job = services.records.get_job(job_id)
    if job is None or not caller.owns(job.key_id):
        raise ApiError(
            404, "not_found", f"no job {job_id}: it never existed, expired or was deleted"
        )
    return job


def found_batch(services: Services, batch_id: str, caller: Caller) -> tuple[BatchRecord, BatchJobs]:
    """The batch and its jobs and videos, on the same terms as ``found_job``."""
    batch = services.records.get_batch(batch_id)
    if batch is None or not caller.owns(batch.key_id):
        raise ApiError(
            404, "not_found", f"no batch {batch_id}: it never existed, expired or was deleted"
        )
    jobs: BatchJobs = dict(
        zip(batch.job_ids, services.records.get_jobs(batch.job_ids), strict=True)
    )
    jobs.update((video_id, services.videos.get(video_id)) for video_id in batch.video_ids)
    return batch, jobs


async def wait_until_finished(services: Services, job: JobRecord, seconds: float) -> JobRecord:
    """Block on the worker's announcement, in short slices (see RecordStore.await_finished)."""
    deadline = time.monotonic() + seconds
    while job.status not in FINISHED and (remaining := deadline - time.monotonic()) > 0:
        slice_seconds = min(WAIT_SLICE_SECONDS, remaining)
        latest = await run_in_threadpool(_job_after_waiting, services, job.id, slice_seconds)
        if latest is None:
            break
        job = latest
    return job


def _job_after_waiting(services: Services, job_id: str, seconds: float) -> JobRecord | None:
    """One trip to a worker thread: wait for the announcement, then read the record."""
    services.records.await_finished(job_id, seconds)
    return services.records.get_job(job_id)


def result_response(
    services: Services, job: JobRecord, range_header: str | None = None
) -> Response:
    """The anonymized image of a finished job, streamed from the store with its length (or the
    one byte range asked for: 206); never anything else."""
    if job.status is JobStatus.FAILED:
        raise ApiError(409, "job_failed", f"the image could not be anonymized: {job.error}")
    if job.status is not JobStatus.DONE:
        raise ApiError(409, "not_ready", f"the job is {job.status.value}; try again shortly")
    return stored_result_response(
        services,
        job.id,
        job.content_type or "application/octet-stream",
        range_header,
        {"X-Faces": str(job.faces or 0), "X-Job-Id": job.id},
    )


def stored_result_response(
    services: Services,
    upload_id: str,
    content_type: str,
    range_header: str | None,
    headers: dict[str, str],
) -> Response:
    """The stored result of a finished upload (image or video), streamed with its length, or the
    one byte range asked for (206)."""
    key = result_key(upload_id)
    size = services.blobs.size(key)
    wanted = None if size is None else requested_range(range_header, size)
    chunks = services.blobs.read(key, wanted.first if wanted else 0)
    if size is None or chunks is None:
        raise ApiError(404, "not_found", f"the result of {upload_id} expired or was deleted")
    headers = {**headers, "Accept-Ranges": "bytes"}
    if wanted is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(chunks, media_type=content_type, headers=headers)
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = wanted.content_range(size)
    return StreamingResponse(
        limited(chunks, wanted.length), 206, media_type=content_type, headers=headers
    )


def purge_job(services: Services, job: JobRecord, caller: Caller) -> None:
    """A job of a batch also gives up its batch's archive, which the last job to go destroys."""
    destroyed = _delete_stored(services, [job.id])
    services.audit.append(
        audit_events.job_deleted(job, caller.key_id, caller.address),
        audit_events.keys_destroyed(job.id, job.batch_id, destroyed),
    )
    if job.batch_id is not None and job.archive_entry is not None:
        batch_archives.count_off(
            services.records, services.blobs, services.audit, job.batch_id, job.id
        )


def purge_batch(services: Services, batch: BatchRecord, caller: Caller) -> None:
    """The batch's jobs, its videos (their workers stop) and its stored ZIP, whichever of them
    are still there."""
    destroyed = _delete_stored(services, batch.job_ids, archive_key(batch.id))
    for video in filter(None, map(services.videos.get, batch.video_ids)):
        destroyed += delete_stored_video(services, video)
    services.records.delete_batch(batch.id)
    services.audit.append(
        audit_events.batch_deleted(batch, caller.key_id, caller.address),
        audit_events.keys_destroyed(None, batch.id, destroyed),
    )


def delete_stored_video(services: Services, video: VideoRecord) -> int:
    """Record first (a worker on it stops at its next progress report and stores nothing), data
    keys next (no copy can be read from then on), files last; how many data keys were
    destroyed."""
    services.videos.delete(video)
    stored = [
        input_key(video.id),
        result_key(video.id),
        report_key(video.id),
        *video_work_keys(video.id, video.segments or 0),
    ]
    destroyed = services.blobs.destroy_keys(*stored)
    services.blobs.delete(*stored)
    return destroyed


def _delete_stored(services: Services, job_ids: list[str], *other_objects: str) -> int:
    """Every key of these jobs (and ``other_objects``), the data keys of their stored objects
    first: from then on no copy of them can be read. How many data keys were destroyed. A
    result reused by a duplicate upload was copied, so this never removes another job's
    result."""
    services.records.delete_jobs(*job_ids)
    objects = [key for job_id in job_ids for key in (input_key(job_id), result_key(job_id))]
    objects += other_objects
    destroyed = services.blobs.destroy_keys(*objects)
    services.blobs.delete(*objects)
    return destroyed
