"""Store an upload and queue it: the payload goes to the blob store, only its id to the broker.
A ZIP becomes a batch: one job per image in it, one video per video, and a recorded reason for
every other file. The ZIP stays in the blob store as it was streamed there (``streamed_form``):
the gateway judges it from its central directory and a few bytes of each entry, and each job's
worker reads its own entry out of it (``jobstore.batch_archives``); a video's first step copies
its entry out into the video's own input, as its later steps need to seek in it.

A duplicate upload (same bytes, same parameters, same API key) while the first one's result is
still kept is answered with a copy of that result instead of being computed again. The copy
belongs to the new job alone, so deleting either job never removes the other's result, and the new
request gets an audit record of its own that names the job it reused. Never across keys: that
would tell one key that another had already processed the same photo.
"""

import logging
import time
import uuid
import zipfile
from typing import IO, Any

from blurcore import AnonymizeParams, cache_key
from blurcore.archive import (
    MAX_BATCH_INFLATION_RATIO,
    MIN_INFLATION_BUDGET,
    EntryLocation,
    JudgedEntry,
    declared_inflation,
    entry_kind,
    inflation_budget,
    judged_entries,
)
from blurcore.errors import ArchiveEntryError
from fpg_api.batch_report import REPORT_NAME
from fpg_api.deps import Caller, Services
from fpg_api.errors import ApiError
from fpg_api.settings import GatewaySettings
from fpg_api.videos import kept_seconds, queue_video
from jobstore import audit_events
from jobstore.blobs import input_key, result_key
from jobstore.celery_wiring import ANONYMIZE_TASK
from jobstore.records import ArchiveEntryRef, BatchEntry, BatchRecord, JobRecord, JobStatus
from jobstore.video_records import VideoRecord

log = logging.getLogger("fpg.gateway")


def new_id() -> str:
    return uuid.uuid4().hex


def submit_job(
    services: Services,
    data: bytes,
    filename: str,
    params: AnonymizeParams,
    caller: Caller | None = None,
) -> JobRecord:
    """Blob first, record second, task last: a worker never sees a job whose bytes are missing."""
    job = JobRecord(
        id=new_id(),
        params=params,
        filename=filename,
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
    _queue(services, job)
    return job


def _queue(services: Services, job: JobRecord) -> None:
    services.celery.send_task(ANONYMIZE_TASK, args=[job.id])
    log.info("job queued", extra={"job_id": job.id, "batch_id": job.batch_id, "client": job.client})


def _reuse_stored_result(services: Services, job: JobRecord, data: bytes) -> JobRecord | None:
    """A finished job with the same content and parameters whose result is still stored."""
    source_id = services.records.cached_job_id(cache_key(data, job.params), job.key_id)
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


def submit_batch(
    services: Services,
    batch_id: str,
    archive: IO[bytes],
    archive_bytes: int,
    filename: str,
    params: AnonymizeParams,
    caller: Caller,
) -> BatchRecord:
    """Every file of the ZIP (``archive``, the stored upload, a seekable file of
    ``archive_bytes``) accounted for: an image becomes a job of the batch that refers to its
    entry, a video a video of the batch that does; any other file is kept with the reason it is
    not processed, and audited. No entry is inflated but for the few bytes that tell what it is.

    A batch's images are not answered with a stored result of the same bytes, as single
    uploads are (``_reuse_stored_result``): that needs each entry's bytes, which the gateway no
    longer inflates, and a batch is answered later anyway, so only detection time could be saved,
    by a worker that would still read and inflate the entry. Workers do index their results, so
    a later single upload of the same photo reuses a batch's result."""
    batch = BatchRecord(
        id=batch_id,
        params=params,
        filename=filename,
        entries=[],
        key_id=caller.key_id,
        client=caller.address,
    )
    settings = services.settings
    with _opened_zip(archive) as zipped:
        _refuse_beyond_limits(zipped, archive_bytes, settings)
        largest = max(settings.max_image_bytes, settings.max_video_bytes)
        judged = judged_entries(zipped, largest, frozenset({REPORT_NAME}))
        classified = [_batch_entry(zipped, entry, batch, settings) for entry in judged]
    batch.entries = [entry for entry, _upload in classified]
    jobs = [upload for _entry, upload in classified if isinstance(upload, JobRecord)]
    videos = [upload for _entry, upload in classified if isinstance(upload, VideoRecord)]
    if len(videos) > settings.max_batch_videos:
        raise ApiError(
            413,
            "too_many_videos",
            f"the ZIP holds {len(videos)} videos; the limit is {settings.max_batch_videos}",
        )
    refusals = [audit_events.image_refused(batch, e) for e in batch.entries if e.status is not None]
    if refusals:
        services.audit.append(*refusals)
    # Every record and the hold before the first task: a worker finishing the batch's last job
    # reads them all, and the ZIP stays until every job has read it and every video copied it.
    services.records.create_jobs(jobs)
    readers = [job.id for job in jobs] + [video.id for video in videos]
    if readers:
        services.records.hold_archive(batch.id, readers)
    # A video's header is read by its first step: until then, it may be as long as allowed, and
    # its batch is kept as long as its record is (its progress and result ZIP wait for it).
    longest = settings.max_video_seconds
    services.records.create_batch(batch, kept_seconds(services, longest) if videos else None)
    for job in jobs:
        _queue(services, job)
    for video in videos:
        queue_video(services, video, longest)
    return batch


def _opened_zip(archive: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise ApiError(400, "invalid_zip", f"not a valid ZIP file: {error}") from error


def _refuse_beyond_limits(
    archive: zipfile.ZipFile, archive_bytes: int, limits: GatewaySettings
) -> None:
    """Judged from the central directory alone, before anything is inflated. The sizes it
    declares bound what the workers inflate: no entry is read past its declared size
    (``blurcore.archive.read_entry``)."""
    files = [info for info in archive.infolist() if not info.is_dir()]
    if len(files) > limits.max_batch_entries:
        raise ApiError(
            413,
            "too_many_entries",
            f"the ZIP holds {len(files)} files; the limit is {limits.max_batch_entries}",
        )
    budget = inflation_budget(archive_bytes, limits.max_batch_uncompressed_bytes)
    declared = declared_inflation(archive)
    if declared > budget:
        raise ApiError(
            413,
            "zip_too_large",
            f"the ZIP's entries declare {declared:,} bytes together; the limit for a ZIP of "
            f"{archive_bytes:,} bytes is {budget:,} ({MAX_BATCH_INFLATION_RATIO} times its size, "
            f"at least {MIN_INFLATION_BUDGET:,}, at most {limits.max_batch_uncompressed_bytes:,})",
        )


def _batch_entry(
    archive: zipfile.ZipFile, entry: JudgedEntry, batch: BatchRecord, limits: GatewaySettings
) -> tuple[BatchEntry, JobRecord | VideoRecord | None]:
    """One file of the ZIP: a job when it is an image, a video when it is one, else the reason
    it is neither."""
    if entry.status is not None:
        return BatchEntry(path=entry.name, status=entry.status, error=entry.error), None
    try:
        kind = entry_kind(archive, entry)
    except ArchiveEntryError as error:
        return BatchEntry(path=entry.name, status="failed", error=str(error)), None
    if kind is None:
        return BatchEntry(
            path=entry.name, status="skipped", error="neither an image nor a video"
        ), None
    max_bytes = limits.max_image_bytes if kind == "image" else limits.max_video_bytes
    if entry.info.file_size > max_bytes:
        return BatchEntry(path=entry.name, status="failed", error="entry too large"), None
    # What a job and a video of the batch have alike: the batch's, and where their entry lies.
    of_batch: dict[str, Any] = {
        "params": batch.params,
        "filename": entry.name,
        "batch_id": batch.id,
        "key_id": batch.key_id,
        "client": batch.client,
        "archive_entry": ArchiveEntryRef(
            location=EntryLocation.of(entry.info), max_bytes=max_bytes
        ),
    }
    if kind == "image":
        job = JobRecord(id=new_id(), **of_batch)
        return BatchEntry(path=entry.name, job_id=job.id), job
    video = VideoRecord(
        id=new_id(),
        suffix=kind.suffix,
        content_type=kind.content_type,
        declared_frames=0,  # its header is read by its first step, once copied out
        **of_batch,
    )
    return BatchEntry(path=entry.name, video_id=video.id), video
