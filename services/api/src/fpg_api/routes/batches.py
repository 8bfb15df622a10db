from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from blurcore import AnonymizeParams
from fpg_api.batch_report import REPORT_NAME, batch_progress, result_zip
from fpg_api.deps import Caller, Services, ServicesDep, SubmitterDep
from fpg_api.errors import ApiError, error_responses
from fpg_api.jobs import found_batch, purge_batch
from fpg_api.policy import params_within_policy, within_detection_ceiling
from fpg_api.schemas import BatchAccepted, BatchProgress, UploadId
from fpg_api.streamed_form import (
    StreamedForm,
    body_from_event_loop,
    parsed_fields,
    store_form,
    streamed_request_body,
)
from fpg_api.submission import new_id, submit_batch
from jobstore.blobs import archive_key
from jobstore.blobs.reader import open_blob
from jobstore.records import BatchRecord

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=error_responses(401, 403))


@router.post(
    "",
    summary="Anonymize every image and video of a ZIP",
    status_code=202,
    responses=error_responses(400, 413, 422, 503),
    openapi_extra=streamed_request_body("BatchUpload"),  # schemas.BatchUpload
)
async def create_batch(
    services: ServicesDep, caller: SubmitterDep, request: Request, response: Response
) -> BatchAccepted:
    """The ZIP goes to the blob store as it arrives and stays there, where the batch's jobs read
    their entries and its videos copy theirs out; it goes at once when none will (refused, or
    with neither images nor videos)."""
    settings = services.settings
    batch_id = new_id()
    archive_needed = False
    try:
        form = await run_in_threadpool(
            store_form,
            body_from_event_loop(request.stream()),
            request.headers.get("content-type", ""),
            services.blobs,
            archive_key(batch_id),
            settings.retention_seconds,
        )
        params = within_detection_ceiling(
            params_within_policy(
                parsed_fields(form, AnonymizeParams), form.fields.keys(), settings.policy
            ),
            settings.max_detection_side,
        )
        batch = await run_in_threadpool(_split, services, batch_id, form, params, caller)
        archive_needed = bool(batch.job_ids or batch.video_ids)
    finally:
        if not archive_needed:
            await run_in_threadpool(services.blobs.delete, archive_key(batch_id))
    status_url = str(request.url_for("get_batch", batch_id=batch.id))
    response.headers["Location"] = status_url
    return BatchAccepted(
        id=batch.id,
        total=len(batch.entries),
        status_url=status_url,
        result_url=str(request.url_for("get_batch_result", batch_id=batch.id)),
    )


def _split(
    services: Services, batch_id: str, form: StreamedForm, params: AnonymizeParams, caller: Caller
) -> BatchRecord:
    archive = open_blob(services.blobs, archive_key(batch_id))
    if archive is None:
        raise ApiError(404, "not_found", "the upload expired before it could be read")
    with archive:
        return submit_batch(
            services,
            batch_id,
            archive,
            form.file_bytes,
            form.filename or "batch.zip",
            params,
            caller,
        )


@router.get("/{batch_id}", summary="Progress of a batch", responses=error_responses(404))
def get_batch(services: ServicesDep, caller: SubmitterDep, batch_id: UploadId) -> BatchProgress:
    return batch_progress(*found_batch(services, batch_id, caller))


@router.get(
    "/{batch_id}/result",
    summary=f"A ZIP of the anonymized images and videos and {REPORT_NAME}",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, **error_responses(404, 409)},
)
def get_batch_result(services: ServicesDep, caller: SubmitterDep, batch_id: UploadId) -> Response:
    batch, jobs = found_batch(services, batch_id, caller)
    progress = batch_progress(batch, jobs)
    if not progress.finished:
        raise ApiError(
            409, "not_ready", f"{progress.pending} of {progress.total} files still pending"
        )
    return StreamingResponse(
        result_zip(batch, jobs, services.blobs),
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
    batch, _jobs = found_batch(services, batch_id, caller)
    purge_batch(services, batch, caller)
    return Response(status_code=204)
