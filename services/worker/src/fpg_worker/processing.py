"""One job, start to end, with no Celery in sight: the task is a thin shell over this."""

import logging
import time
from dataclasses import dataclass

from blurcore import Anonymizer, BlurcoreError
from blurcore.boxes import to_xywh
from blurcore.errors import ArchiveEntryError
from blurcore.hashing import cache_key_of_digest, sha256_hex
from fpg_audit import AuditEvent, AuditStore
from jobstore import audit_events, batch_archives
from jobstore.blobs import SealedBlobStore, input_key, result_key
from jobstore.metrics import MetricsStore
from jobstore.records import FINISHED, JobRecord, JobStatus, RecordStore

log = logging.getLogger("fpg.worker")


@dataclass
class JobRunner:
    records: RecordStore
    blobs: SealedBlobStore
    metrics: MetricsStore
    anonymizer: Anonymizer
    # What the task queue raises into a job that runs past its soft time limit.
    time_limit_errors: tuple[type[BaseException], ...] = ()
    # The audit trail; a runner without one (library use, some tests) records nothing.
    audit: AuditStore | None = None
    # Starts a job gets. A start that never finishes means its worker process died on it (killed,
    # out of memory, a crash in native code) and the queue delivered it again; a job that took
    # down this many processes is failed rather than handed to yet another.
    max_attempts: int = 3

    def run(self, job_id: str) -> JobRecord | None:
        """Anonymize one stored upload. Fail closed: a result is stored only when complete, and
        a job is marked done only after its result is stored and audited; the original is
        released as soon as the job is marked done (``_release_original``)."""
        job = self.records.get_job(job_id)
        if job is None:
            log.info("job gone before it ran", extra={"job_id": job_id})
            return None
        if job.status in FINISHED:
            # A redelivered task: the first run answered, and may have died before releasing the
            # original (see below).
            self._release_original(job)
            return job
        job.attempts = self.records.count_attempt(job_id)
        if job.attempts == 0:
            return None  # deleted meanwhile
        job.status, job.started_at = JobStatus.RUNNING, time.time()
        if job.attempts > self.max_attempts:
            reason = (
                f"its worker process died {self.max_attempts} times while processing it "
                "(killed, out of memory or crashed); it is not tried again"
            )
            return self._fail(job, reason, self._hashable_original(job))
        job.detectors = {
            detector.name: detector.model_sha256
            for detector in self.anonymizer.finder.detectors_for(job.params.profile)
        }
        if not self.records.update_job(job):
            return None
        try:
            data = self._original(job)
        except ArchiveEntryError as error:
            return self._fail(job, str(error), None)
        if data is None:
            return self._fail(job, "the original expired or was deleted before processing", None)
        try:
            result = self.anonymizer.process(data, job.params)
        except BlurcoreError as error:
            return self._fail(job, str(error), data)
        except self.time_limit_errors:
            return self._fail(job, "processing took longer than the time limit", data)
        except Exception:
            self._fail(job, "internal error while processing the image", data)
            raise
        retention = self.records.retention_seconds
        self.blobs.put(result_key(job_id), result.data, retention)
        job.result_expires_at = time.time() + retention
        job.status, job.finished_at = JobStatus.DONE, time.time()
        job.content_type = result.format.mime_type
        job.faces, job.regions = result.faces, to_xywh(result.regions)
        job.input_sha256, job.output_sha256 = result.input_sha256, result.output_sha256
        try:
            self._audit(*self._outcome_events(job))
        except Exception:
            self.blobs.delete(result_key(job_id))
            self._fail(job, "the audit trail could not be written; the result was discarded", data)
            raise
        finished = self.records.finish_job(
            job, cache_key_of_digest(result.input_sha256, job.params)
        )
        # The original goes once the record says done, not before: a worker killed in between
        # leaves a job its redelivery can still finish (or, once done, just release it), never
        # one failed for want of an original whose result was already made.
        self._release_original(job)
        if not finished:
            self.blobs.delete(result_key(job_id))  # deleted meanwhile: keep nothing
            self._audit(audit_events.result_deleted(job))
            return None
        self._finished(job)
        return job

    def _fail(self, job: JobRecord, reason: str, data: bytes | None) -> JobRecord:
        job.status, job.finished_at, job.error = JobStatus.FAILED, time.time(), reason
        if data is not None:
            job.input_sha256 = sha256_hex(data)
        try:
            self._audit(*self._outcome_events(job))
        finally:
            self.records.finish_job(job)
            self._finished(job)
            self._release_original(job)
        return job

    def _original(self, job: JobRecord) -> bytes | None:
        """The uploaded image: its own blob, or its entry of the batch's stored ZIP; None when
        it expired or was deleted. ArchiveEntryError for an entry that cannot be read."""
        if job.archive_entry is None:
            return self.blobs.get(input_key(job.id))
        return batch_archives.read_batch_entry(self.blobs, job)

    def _hashable_original(self, job: JobRecord) -> bytes | None:
        try:
            return self._original(job)
        except ArchiveEntryError:
            return None

    def _outcome_events(self, job: JobRecord) -> list[AuditEvent]:
        """The image record, and the original's deletion where it happens now: an entry of a
        batch's ZIP goes with the archive, audited then (``batch_archives``)."""
        if job.archive_entry is None:
            return [audit_events.image_processed(job), audit_events.original_deleted(job)]
        return [audit_events.image_processed(job)]

    def _release_original(self, job: JobRecord) -> None:
        """Delete the job's own original, or count the job off its batch's archive."""
        if job.batch_id is None or job.archive_entry is None:
            self.blobs.delete(input_key(job.id))
        else:
            batch_archives.count_off(self.records, self.blobs, self.audit, job.batch_id, job.id)

    def _audit(self, *events: AuditEvent) -> None:
        if self.audit is not None:
            self.audit.append(*events)

    def _finished(self, job: JobRecord) -> None:
        seconds = (job.finished_at or 0.0) - (job.started_at or 0.0)
        self.metrics.record_job(job.status.value, seconds, job.faces or 0)
        log.info(
            "job %s",
            job.status.value,
            extra={
                "job_id": job.id,
                "batch_id": job.batch_id,
                "status": job.status.value,
                "faces": job.faces,
                "seconds": round(seconds, 4),
                "error": job.error,
            },
        )
