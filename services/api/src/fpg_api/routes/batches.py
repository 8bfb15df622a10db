import io
import json
import zipfile
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from blurcore import AnonymizeParams
from blurcore.archive import archive_entries, is_image_candidate
from blurcore.hashing import sha256_hex
from fpg_api.deps import Caller, Services, ServicesDep, SubmitterDep
from fpg_api.errors import ApiError, error_responses
from fpg_api.routes.jobs import purge_jobs
from fpg_api.schemas import (
    BatchAccepted,
    BatchProgress,
    BatchReportImage,
    BatchResultReport,
    BatchUpload,
    UploadId,
)
from fpg_api.submission import new_id, submit_job
from fpg_audit import AuditEvent
from jobstore import audit_events
from jobstore.blobstore import result_key
from jobstore.records import BatchEntry, BatchRecord, JobRecord, JobStatus

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=error_responses(401, 403))

REPORT_NAME = "report.json"  # at the root of the result ZIP, beside the images


def _submit_batch(
    services: Services, data: bytes, filename: str, params: AnonymizeParams, caller: Caller
) -> BatchRecord:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ApiError(400, "invalid_zip", f"not a valid ZIP file: {error}") from error
    with archive:
        files = [info for info in archive.infolist() if not info.is_dir()]
        limits = services.settings
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
        batch = BatchRecord(
            id=new_id(),
            params=params,
            filename=filename,
            entries=[],
            key_id=caller.key_id,
            client=caller.address,
        )
        refused: list[AuditEvent] = []
        for entry in archive_entries(archive, services.settings.max_image_bytes):
            if entry.data is None:
                batch.entries.append(
                    BatchEntry(path=entry.name, status=entry.status, error=entry.error)
                )
            elif entry.name == REPORT_NAME:
                batch.entries.append(
                    BatchEntry(
                        path=entry.name,
                        status="skipped",
                        error=f"the name {REPORT_NAME} is reserved for the batch report",
                        input_sha256=sha256_hex(entry.data),
                    )
                )
            elif not is_image_candidate(entry.name, entry.data):
                batch.entries.append(
                    BatchEntry(
                        path=entry.name,
                        status="skipped",
                        error="not an image",
                        input_sha256=sha256_hex(entry.data),
                    )
                )
            else:
                job = submit_job(services, entry.data, entry.name, params, batch.id, caller)
                batch.entries.append(BatchEntry(path=entry.name, job_id=job.id))
                continue
            refused.append(audit_events.image_refused(batch, batch.entries[-1]))
    if refused:
        services.audit.append(*refused)
    services.records.create_batch(batch)
    return batch


@router.post(
    "",
    summary="Anonymize every image of a ZIP",
    status_code=202,
    responses=error_responses(400, 413, 422, 503),
)
async def create_batch(
    services: ServicesDep,
    caller: SubmitterDep,
    request: Request,
    response: Response,
    upload: Annotated[BatchUpload, Form(media_type="multipart/form-data")],
) -> BatchAccepted:
    data = await upload.file.read()
    params = AnonymizeParams.model_validate(upload.model_dump(exclude={"file"}))
    batch = await run_in_threadpool(
        _submit_batch, services, data, upload.file.filename or "batch.zip", params, caller
    )
    status_url = str(request.url_for("get_batch", batch_id=batch.id))
    response.headers["Location"] = status_url
    return BatchAccepted(
        id=batch.id,
        total=len(batch.entries),
        status_url=status_url,
        result_url=str(request.url_for("get_batch_result", batch_id=batch.id)),
    )


def _found_batch(
    services: Services, batch_id: str, caller: Caller
) -> tuple[BatchRecord, dict[str, JobRecord | None]]:
    batch = services.records.get_batch(batch_id)
    if batch is None or not caller.owns(batch.key_id):
        raise ApiError(
            404, "not_found", f"no batch {batch_id}: it never existed, expired or was deleted"
        )
    jobs = dict(zip(batch.job_ids, services.records.get_jobs(batch.job_ids), strict=True))
    return batch, jobs


def _report_images(batch: BatchRecord, jobs: dict[str, JobRecord | None]) -> list[BatchReportImage]:
    images = []
    for entry in batch.entries:
        job = jobs.get(entry.job_id) if entry.job_id else None
        if entry.job_id is None:
            assert entry.status is not None
            images.append(
                BatchReportImage(
                    path=entry.path,
                    status=entry.status,
                    error=entry.error,
                    input_sha256=entry.input_sha256,
                )
            )
        elif job is None:
            images.append(
                BatchReportImage(path=entry.path, status="expired", error="job record expired")
            )
        else:
            images.append(
                BatchReportImage(
                    path=entry.path,
                    job_id=job.id,
                    status=job.status.value
                    if job.status in (JobStatus.DONE, JobStatus.FAILED)
                    else "failed",
                    faces=job.faces,
                    boxes=job.regions,
                    input_sha256=job.input_sha256,
                    output_sha256=job.output_sha256,
                    error=job.error,
                )
            )
    return images


def _progress(batch: BatchRecord, jobs: dict[str, JobRecord | None]) -> BatchProgress:
    statuses = [job.status if job else JobStatus.FAILED for job in jobs.values()]
    done = statuses.count(JobStatus.DONE)
    failed = statuses.count(JobStatus.FAILED) + sum(
        1 for e in batch.entries if e.status == "failed"
    )
    skipped = sum(1 for entry in batch.entries if entry.status == "skipped")
    pending = len(statuses) - done - statuses.count(JobStatus.FAILED)
    return BatchProgress(
        id=batch.id,
        total=len(batch.entries),
        done=done,
        failed=failed,
        skipped=skipped,
        pending=pending,
        faces=sum(job.faces or 0 for job in jobs.values() if job),
        finished=pending == 0,
    )


@router.get("/{batch_id}", summary="Progress of a batch", responses=error_responses(404))
def get_batch(services: ServicesDep, caller: SubmitterDep, batch_id: UploadId) -> BatchProgress:
    return _progress(*_found_batch(services, batch_id, caller))


@router.get(
    "/{batch_id}/result",
    summary=f"A ZIP of the anonymized images and {REPORT_NAME}",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, **error_responses(404, 409)},
)
def get_batch_result(services: ServicesDep, caller: SubmitterDep, batch_id: UploadId) -> Response:
    batch, jobs = _found_batch(services, batch_id, caller)
    progress = _progress(batch, jobs)
    if not progress.finished:
        raise ApiError(
            409, "not_ready", f"{progress.pending} of {progress.total} files still pending"
        )
    images = _report_images(batch, jobs)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for image, entry in zip(images, batch.entries, strict=True):
            if image.status != "done" or entry.job_id is None:
                continue
            data = services.blobs.get(result_key(entry.job_id))
            if data is None:
                image.status, image.error = "expired", "result expired before download"
                continue
            archive.writestr(entry.path, data)
        report = BatchResultReport(
            id=batch.id, params=batch.params, summary=progress, images=images
        )
        archive.writestr(REPORT_NAME, json.dumps(report.model_dump(mode="json"), indent=2))
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="anonymized-{batch.id}.zip"'},
    )


@router.delete(
    "/{batch_id}",
    summary="Purge the batch and every stored byte of it now",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
)
def delete_batch(services: ServicesDep, caller: SubmitterDep, batch_id: UploadId) -> Response:
    batch, _jobs = _found_batch(services, batch_id, caller)
    purge_jobs(services, *batch.job_ids)
    services.records.delete_batch(batch.id)
    services.audit.append(audit_events.batch_deleted(batch, caller.key_id, caller.address))
    return Response(status_code=204)
