"""Store an upload and queue it: the payload goes to the blob store, only its id to the broker.

A duplicate upload (same bytes, same parameters) while the first one's result is still kept is
answered with a copy of that result instead of being computed again. The copy belongs to the new
job alone, so deleting either job never removes the other's result, and the new request gets an
audit record of its own that names the job it reused.
"""

import logging
import time
import uuid

from blurcore import AnonymizeParams, cache_key
from fpg_api.deps import Caller, Services
from jobstore import audit_events
from jobstore.blobstore import input_key, result_key
from jobstore.celery_wiring import ANONYMIZE_TASK
from jobstore.records import JobRecord, JobStatus

log = logging.getLogger("fpg.gateway")


def new_id() -> str:
    return uuid.uuid4().hex


def submit_job(
    services: Services,
    data: bytes,
    filename: str,
    params: AnonymizeParams,
    batch_id: str | None = None,
    caller: Caller | None = None,
) -> JobRecord:
    """Blob first, record second, task last: a worker never sees a job whose bytes are missing."""
    job = JobRecord(
        id=new_id(),
        params=params,
        filename=filename,
        batch_id=batch_id,
        key_id=caller.key_id if caller else None,
        client=caller.address if caller else None,
    )
    if services.settings.reuse_results:
        reused = _reuse_stored_result(services, job, data)
        if reused is not None:
            return reused
    retention = services.settings.retention_seconds
    services.blobs.put(input_key(job.id), data, retention)
    services.records.create_job(job)
    services.celery.send_task(ANONYMIZE_TASK, args=[job.id])
    log.info("job queued", extra={"job_id": job.id, "batch_id": batch_id, "client": job.client})
    return job


def _reuse_stored_result(services: Services, job: JobRecord, data: bytes) -> JobRecord | None:
    """A finished job with the same content and parameters whose result is still stored."""
    source_id = services.records.cached_job_id(cache_key(data, job.params))
    source = services.records.get_job(source_id) if source_id else None
    if source is None or source.status is not JobStatus.DONE:
        return None
    result = services.blobs.get(result_key(source.id))
    if result is None:
        return None
    now = time.time()
    retention = services.settings.retention_seconds
    job.status, job.started_at, job.finished_at = JobStatus.DONE, now, now
    job.content_type, job.faces, job.regions = source.content_type, source.faces, source.regions
    job.input_sha256, job.output_sha256 = source.input_sha256, source.output_sha256
    job.detectors, job.reused_from = source.detectors, source.id
    services.blobs.put(result_key(job.id), result, retention)
    job.result_expires_at = now + retention
    try:
        services.audit.append(audit_events.image_processed(job))
    except Exception:
        services.blobs.delete(result_key(job.id))
        raise
    services.records.create_job(job)
    log.info(
        "duplicate upload: stored result reused",
        extra={"job_id": job.id, "batch_id": job.batch_id, "client": job.client},
    )
    return job
