"""A batch's ZIP, stored as uploaded (sealed like every object): each job of the batch reads its
own entry out of it, each video of the batch copies its entry out into its own input (its steps
seek in it), and it is destroyed once none needs it any more: when the last job has finished (or
was deleted) and the last video was copied out (or deleted), when the whole batch is deleted,
or, failing all, when its retention ends and its data key expires with it.

The originals of a batch's images are its entries, so they are deleted with the archive: that
is when their jobs' ``original_deleted`` records are written, with a ``keys_destroyed`` record
for the archive's data key (docs/compliance.md). A video's entry goes with the archive too,
while its copy goes when the video is done or failed: each deletion has its own
``original_deleted`` record, so the original is gone once the video has both.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from blurcore.archive import entry_chunks, read_entry
from fpg_audit import AuditStore
from jobstore import audit_events
from jobstore.blobs import BlobStore, archive_key
from jobstore.blobs.reader import open_blob
from jobstore.records import FINISHED, ArchiveEntryRef, BatchRecord, JobRecord, RecordStore
from jobstore.video_records import VideoRecord


def read_batch_entry(blobs: BlobStore, job: JobRecord) -> bytes | None:
    """The job's entry of its batch's ZIP, inflated no further than it declares nor than its
    limit; None when the archive is gone (expired or deleted); ArchiveEntryError when the entry
    cannot be read. Only the entry is read, not the ZIP's central directory."""
    try:
        with _opened_archive(blobs, job) as (archive, entry):
            if archive is None:
                return None
            return read_entry(archive, job.filename, entry.location, entry.max_bytes)
    except FileNotFoundError:  # deleted while it was being read
        return None


@contextmanager
def batch_entry_chunks(blobs: BlobStore, video: VideoRecord) -> Iterator[Iterator[bytes] | None]:
    """The video's entry of its batch's ZIP, a chunk at a time, within the same bounds as
    ``read_batch_entry`` (a video is too large to hold, and is copied into its own input); None
    when the archive is gone. Iterating raises ArchiveEntryError when the entry cannot be read,
    FileNotFoundError when the archive is deleted meanwhile."""
    with _opened_archive(blobs, video) as (archive, entry):
        if archive is None:
            yield None
        else:
            yield entry_chunks(archive, video.filename, entry.location, entry.max_bytes)


@contextmanager
def _opened_archive(
    blobs: BlobStore, upload: JobRecord | VideoRecord
) -> Iterator[tuple[IO[bytes] | None, ArchiveEntryRef]]:
    """The upload's batch's stored ZIP, opened (None when it is gone), and where the upload's
    entry lies in it."""
    if upload.batch_id is None or upload.archive_entry is None:
        raise ValueError(f"{upload.id} is not an entry of a batch's ZIP")
    archive = open_blob(blobs, archive_key(upload.batch_id))
    if archive is None:
        yield None, upload.archive_entry
        return
    with archive:
        yield archive, upload.archive_entry


def count_off(
    records: RecordStore,
    blobs: BlobStore,
    audit: AuditStore | None,
    batch_id: str,
    job_id: str,
) -> None:
    """The job no longer needs the archive; the last one to say so destroys it."""
    if records.count_off(batch_id, job_id):
        destroy_archive(records, blobs, audit, batch_id)


def destroy_archive(
    records: RecordStore, blobs: BlobStore, audit: AuditStore | None, batch_id: str
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
            *(audit_events.entry_deleted(video_id, batch_id) for video_id in _video_ids(batch)),
            audit_events.keys_destroyed(None, batch_id, 1),
        )
    blobs.delete(key)
    records.release_archive(batch_id)


def _video_ids(batch: BatchRecord | None) -> list[str]:
    return batch.video_ids if batch else []
