"""Store an upload and queue it: the payload goes to the blob store, only its id to the broker."""

import logging
import uuid

from blurcore import AnonymizeParams
from fpg_api.deps import Services
from jobstore.blobstore import input_key
from jobstore.celery_wiring import ANONYMIZE_TASK
from jobstore.records import JobRecord

log = logging.getLogger("fpg.gateway")


def new_id() -> str:
    return uuid.uuid4().hex


def submit_job(
    services: Services,
    data: bytes,
    filename: str,
    params: AnonymizeParams,
    batch_id: str | None = None,
    client: str | None = None,
) -> JobRecord:
    """Blob first, record second, task last: a worker never sees a job whose bytes are missing."""
    job = JobRecord(id=new_id(), params=params, filename=filename, batch_id=batch_id)
    retention = services.settings.retention_seconds
    services.blobs.put(input_key(job.id), data, retention)
    services.records.create_job(job)
    services.celery.send_task(ANONYMIZE_TASK, args=[job.id])
    log.info("job queued", extra={"job_id": job.id, "batch_id": batch_id, "client": client})
    return job
