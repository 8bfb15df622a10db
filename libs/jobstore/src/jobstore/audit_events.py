"""What the audit trail records: one constructor per kind of event (``fpg_audit.chain.EventKind``),
used by the gateway, the workers and the expiry sweep alike, so the same thing is always recorded
with the same fields. A record's ``boxes`` are its job's ``regions``: records are hashed as written,
so the audit format keeps its own name (docs/compliance.md)."""

from fpg_audit import AuditEvent, AuditRecord
from fpg_audit.chain import iso_utc
from jobstore.records import BatchEntry, BatchRecord, JobRecord, JobStatus
from jobstore.video_records import VideoRecord

Upload = JobRecord | VideoRecord


def image_processed(job: JobRecord) -> AuditEvent:
    """One finished image (done or failed), or a duplicate upload answered from a stored result:
    everything but its bytes."""
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


def image_refused(batch: BatchRecord, entry: BatchEntry) -> AuditEvent:
    """A file of a ZIP that was never processed (not an image, unsafe path, too large): never
    inflated either, so its hash is not known."""
    return AuditEvent(
        event="image",
        batch_id=batch.id,
        path=entry.path,
        outcome="failed" if entry.status == "failed" else "skipped",
        reason=entry.error,
        params=batch.params.model_dump(mode="json"),
        key_id=batch.key_id,
        client=batch.client,
    )


def video_processed(video: VideoRecord) -> AuditEvent:
    """One finished video (done or failed): everything but its pixels; the audio choice is
    among its parameters."""
    return AuditEvent(
        event="video",
        job_id=video.id,
        batch_id=video.batch_id,
        path=video.filename,
        outcome="done" if video.status is JobStatus.DONE else "failed",
        reason=video.error,
        input_sha256=video.input_sha256,
        output_sha256=video.output_sha256,
        faces=video.faces,
        frames=video.frames,
        tracks=video.tracks,
        detectors=video.detectors,
        params={**video.params.model_dump(mode="json"), "audio": video.audio},
        key_id=video.key_id,
        client=video.client,
        result_expires_at=(
            None if video.result_expires_at is None else iso_utc(video.result_expires_at)
        ),
    )


def original_deleted(job: Upload) -> AuditEvent:
    """The worker deleted the upload once it had an outcome."""
    return AuditEvent(
        event="original_deleted",
        job_id=job.id,
        batch_id=job.batch_id,
        input_sha256=job.input_sha256,
        reason="processing finished" if job.status is JobStatus.DONE else "processing failed",
    )


def entry_deleted(video_id: str, batch_id: str) -> AuditEvent:
    """A video's entry of its batch's ZIP deleted with the ZIP: the video's copy of it has an
    ``original_deleted`` of its own, when the video is done or failed."""
    return AuditEvent(
        event="original_deleted",
        job_id=video_id,
        batch_id=batch_id,
        reason="its entry of the batch's ZIP deleted with the ZIP (a video works on a copy)",
    )


def result_deleted(job: Upload) -> AuditEvent:
    """A result discarded because its job was deleted while a worker processed it."""
    return AuditEvent(
        event="result_deleted",
        job_id=job.id,
        batch_id=job.batch_id,
        reason="the job was deleted while it was processed",
    )


def result_expired(image: AuditRecord) -> AuditEvent:
    """An ``image`` or ``video`` record's result outlived its retention and the store no longer
    holds it."""
    return AuditEvent(
        event="result_expired",
        job_id=image.job_id,
        batch_id=image.batch_id,
        output_sha256=image.output_sha256,
        reason=f"retention ended at {image.result_expires_at}",
    )


def job_deleted(job: Upload, key_id: str | None, client: str | None) -> AuditEvent:
    """Every stored byte of the job purged on request of ``key_id`` from ``client``; but for a
    job of a batch, its original, an entry of the batch's ZIP that goes with the ZIP."""
    in_batch_zip = job.archive_entry is not None
    return AuditEvent(
        event="job_deleted",
        job_id=job.id,
        batch_id=job.batch_id,
        reason="deleted on request: result and record purged; the original goes with the "
        "batch's ZIP"
        if in_batch_zip
        else "deleted on request: original, result and record purged",
        key_id=key_id,
        client=client,
    )


def keys_destroyed(job_id: str | None, batch_id: str | None, destroyed: int) -> AuditEvent:
    """The data keys of a deleted job's or batch's stored objects were destroyed: any copy of
    those objects (a disk, a snapshot, a backup) can no longer be decrypted."""
    return AuditEvent(
        event="keys_destroyed",
        job_id=job_id,
        batch_id=batch_id,
        reason=f"{destroyed} data keys destroyed: every copy of the stored objects is unreadable",
    )


def batch_deleted(batch: BatchRecord, key_id: str | None, client: str | None) -> AuditEvent:
    """Every job and video of the batch purged on request of ``key_id`` from ``client``."""
    videos = f" and {len(batch.video_ids)} videos'" if batch.video_ids else ""
    return AuditEvent(
        event="batch_deleted",
        batch_id=batch.id,
        reason=f"deleted on request: {len(batch.job_ids)} jobs'{videos} originals, results and "
        "records purged",
        key_id=key_id,
        client=client,
    )
