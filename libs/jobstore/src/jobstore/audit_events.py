"""The audit records the gateway and the workers write about a job (see fpg_audit)."""

from fpg_audit import AuditEvent
from fpg_audit.chain import iso_utc
from jobstore.records import JobRecord, JobStatus


def image_event(job: JobRecord) -> AuditEvent:
    """The audit record of one finished image: everything but its bytes."""
    return AuditEvent(
        event="image",
        job_id=job.id,
        batch_id=job.batch_id,
        path=job.filename,
        outcome="done" if job.status is JobStatus.DONE else "failed",
        reason=job.error,
        input_sha256=job.input_sha256,
        output_sha256=job.output_sha256,
        faces=job.faces,
        boxes=job.regions if job.status is JobStatus.DONE else None,
        detectors=job.detectors,
        params=job.params.model_dump(mode="json"),
        key_id=job.key_id,
        client=job.client,
        result_expires_at=None if job.result_expires_at is None else iso_utc(job.result_expires_at),
        reused_from=job.reused_from,
    )
