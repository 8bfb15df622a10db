"""Store an upload and queue it: the payload goes to the blob store, only its id to the broker.
A ZIP becomes a batch: one job per image in it, and a recorded reason for every other file. The
ZIP itself is read from the blob store, where it was streamed as it arrived (``streamed_form``),
one entry at a time.

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
from collections.abc import Iterator
from typing import IO

from blurcore import AnonymizeParams, cache_key
from blurcore.archive import (
    MAX_BATCH_INFLATION_RATIO,
    MIN_INFLATION_BUDGET,
    ArchiveEntry,
    archive_entries,
    inflation_budget,
    is_image_candidate,
)
from blurcore.errors import ArchiveTooLargeError
from blurcore.hashing import sha256_hex
from fpg_api.batch_report import REPORT_NAME
from fpg_api.deps import Caller, Services
from fpg_api.errors import ApiError
from fpg_api.settings import GatewaySettings
from jobstore import audit_events
from jobstore.blobs import input_key, result_key
from jobstore.celery_wiring import ANONYMIZE_TASK
from jobstore.records import BatchEntry, BatchRecord, JobRecord, JobStatus

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
    """Every file of the ZIP (``archive``, a seekable file of ``archive_bytes``) accounted for:
    an image is submitted as a job of the batch; any other file is kept with the reason it was
    not processed, and audited."""
    batch = BatchRecord(
        id=batch_id,
        params=params,
        filename=filename,
        entries=[],
        key_id=caller.key_id,
        client=caller.address,
    )
    settings = services.settings
    budget = inflation_budget(archive_bytes, settings.max_batch_uncompressed_bytes)
    with _opened_zip(archive) as entries:
        _refuse_beyond_limits(entries, settings)
        _refuse_inflating_beyond(entries, archive_bytes, settings, budget)
        batch.entries = [
            _batch_entry(services, batch, entry, caller)
            for entry in _checked_entries(entries, settings, budget)
        ]
    refusals = [audit_events.image_refused(batch, e) for e in batch.entries if e.job_id is None]
    if refusals:
        services.audit.append(*refusals)
    services.records.create_batch(batch)
    return batch


def _opened_zip(archive: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise ApiError(400, "invalid_zip", f"not a valid ZIP file: {error}") from error


def _checked_entries(
    archive: zipfile.ZipFile, limits: GatewaySettings, budget: int
) -> Iterator[ArchiveEntry]:
    return archive_entries(archive, limits.max_image_bytes, budget, frozenset({REPORT_NAME}))


def _refuse_inflating_beyond(
    archive: zipfile.ZipFile, archive_bytes: int, limits: GatewaySettings, budget: int
) -> None:
    """Inflate every entry once, counting and keeping nothing, before any is stored: the bytes
    counted are the ones inflated, whatever the headers declare, and a batch refused half-way
    would leave half a batch queued. Only one entry is held at a time (the ZIP is read from the
    blob store), so the gateway's memory stays at one image, and its work at most the budget,
    ten times the upload."""
    try:
        for _entry in _checked_entries(archive, limits, budget):
            pass
    except ArchiveTooLargeError as error:
        raise ApiError(
            413,
            "zip_too_large",
            f"{error}; the limit for a ZIP of {archive_bytes:,} bytes is {budget:,} "
            f"({MAX_BATCH_INFLATION_RATIO} times its size, at least {MIN_INFLATION_BUDGET:,}, "
            f"at most {limits.max_batch_uncompressed_bytes:,})",
        ) from error


def _refuse_beyond_limits(archive: zipfile.ZipFile, limits: GatewaySettings) -> None:
    """Judged from the central directory alone, before anything is inflated."""
    files = [info for info in archive.infolist() if not info.is_dir()]
    if len(files) > limits.max_batch_entries:
        raise ApiError(
            413,
            "too_many_entries",
            f"the ZIP holds {len(files)} files; the limit is {limits.max_batch_entries}",
        )
    inflated = sum(info.file_size for info in files)
    if inflated > limits.max_batch_uncompressed_bytes:
        raise ApiError(
            413,
            "zip_too_large",
            f"the ZIP inflates to {inflated:,} bytes; the limit is "
            f"{limits.max_batch_uncompressed_bytes:,}",
        )


def _batch_entry(
    services: Services, batch: BatchRecord, entry: ArchiveEntry, caller: Caller
) -> BatchEntry:
    """One file of the ZIP: a job when it is an image, else the reason it is not."""
    if entry.data is None:
        return BatchEntry(path=entry.name, status=entry.status, error=entry.error)
    if not is_image_candidate(entry.name, entry.data):
        return BatchEntry(
            path=entry.name,
            status="skipped",
            error="not an image",
            input_sha256=sha256_hex(entry.data),
        )
    job = submit_job(services, entry.data, entry.name, batch.params, batch.id, caller)
    return BatchEntry(path=entry.name, job_id=job.id)
