"""A batch's ZIP, stored as uploaded (sealed like every object): each job of the batch reads its
own entry out of it, and it is destroyed once no job needs it any more: when the last job has
finished (or was deleted), when the whole batch is deleted, or, failing both, when its retention
ends and its data key expires with it.

The originals of a batch's images are its entries, so they are deleted with the archive: that
is when their jobs' ``original_deleted`` records are written, with a ``keys_destroyed`` record
for the archive's data key (docs/compliance.md).
"""

from blurcore.archive import read_entry
from fpg_audit import AuditStore
from jobstore import audit_events
from jobstore.blobs import SealedBlobStore, archive_key
from jobstore.blobs.reader import open_blob
from jobstore.records import FINISHED, JobRecord, RecordStore


def read_batch_entry(blobs: SealedBlobStore, job: JobRecord) -> bytes | None:
    """The job's entry of its batch's ZIP, inflated no further than it declares nor than its
    limit; None when the archive is gone (expired or deleted); ArchiveEntryError when the entry
    cannot be read. Only the entry is read, not the ZIP's central directory."""
    if job.batch_id is None or job.archive_entry is None:
        raise ValueError(f"job {job.id} is not an entry of a batch's ZIP")
    archive = open_blob(blobs, archive_key(job.batch_id))
    if archive is None:
        return None
    entry = job.archive_entry
    try:
        with archive:
            return read_entry(archive, job.filename, entry.location, entry.max_bytes)
    except FileNotFoundError:  # deleted while it was being read
        return None


def count_off(
    records: RecordStore,
    blobs: SealedBlobStore,
    audit: AuditStore | None,
    batch_id: str,
    job_id: str,
) -> None:
    """The job no longer needs the archive; the last one to say so destroys it."""
    if records.count_off(batch_id, job_id):
        destroy_archive(records, blobs, audit, batch_id)


def destroy_archive(
    records: RecordStore, blobs: SealedBlobStore, audit: AuditStore | None, batch_id: str
) -> None:
    """Audit, then destroy, then release: a process that dies on the way leaves the hold in
    place, and the next count (a redelivered task) does it again, at worst auditing it twice,
    never claiming less than what was done. An archive already gone (expired, or deleted with
    its batch meanwhile) is not audited again."""
    key = archive_key(batch_id)
    if blobs.exists(key) and audit is not None:
        batch = records.get_batch(batch_id)
        jobs = records.get_jobs(batch.job_ids if batch else [])
        audit.append(
            *(audit_events.original_deleted(job) for job in jobs if job and job.status in FINISHED),
            audit_events.keys_destroyed(None, batch_id, 1),
        )
    blobs.delete(key)
    records.release_archive(batch_id)
