from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from fpg_api.batch_report import REPORT_NAME, batch_progress, result_zip
from fpg_api.deps import ServicesDep, SubmitterDep
from fpg_api.errors import ApiError, error_responses
from fpg_api.jobs import found_batch, purge_batch
from fpg_api.policy import params_within_policy, within_detection_ceiling
from fpg_api.schemas import BatchAccepted, BatchProgress, BatchUpload, UploadId
from fpg_api.submission import submit_batch

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=error_responses(401, 403))


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
    settings = services.settings
    params = within_detection_ceiling(
        params_within_policy(upload, (await request.form()).keys(), settings.policy),
        settings.max_detection_side,
    )
    data = await upload.file.read()
    batch = await run_in_threadpool(
        submit_batch, services, data, upload.file.filename or "batch.zip", params, caller
    )
    status_url = str(request.url_for("get_batch", batch_id=batch.id))
    response.headers["Location"] = status_url
    return BatchAccepted(
        id=batch.id,
        total=len(batch.entries),
        status_url=status_url,
        result_url=str(request.url_for("get_batch_result", batch_id=batch.id)),
    )


@router.get("/{batch_id}", summary="Progress of a batch", responses=error_responses(404))
def get_batch(services: ServicesDep, caller: SubmitterDep, batch_id: UploadId) -> BatchProgress:
    return batch_progress(*found_batch(services, batch_id, caller))


@router.get(
    "/{batch_id}/result",
    summary=f"A ZIP of the anonymized images and {REPORT_NAME}",
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
    return Response(
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
