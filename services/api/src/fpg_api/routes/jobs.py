from typing import Annotated

from fastapi import APIRouter, Header, Response

from fpg_api.deps import ServicesDep, SubmitterDep
from fpg_api.errors import error_responses
from fpg_api.jobs import found_job, purge_job, result_response
from fpg_api.schemas import JobView, UploadId
from jobstore.records import JobRecord

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=error_responses(401, 403))


def job_view(job: JobRecord) -> JobView:
    return JobView(
        id=job.id,
        status=job.status,
        batch_id=job.batch_id,
        faces=job.faces,
        regions=job.regions,
        content_type=job.content_type,
        input_sha256=job.input_sha256,
        output_sha256=job.output_sha256,
        error=job.error,
        created_at=job.created_at,
        queued_seconds=None if job.started_at is None else job.started_at - job.created_at,
        processing_seconds=(
            None
            if job.finished_at is None or job.started_at is None
            else job.finished_at - job.started_at
        ),
        params=job.params,
    )


@router.get("/{job_id}", summary="Status of one image", responses=error_responses(404))
def get_job(services: ServicesDep, caller: SubmitterDep, job_id: UploadId) -> JobView:
    return job_view(found_job(services, job_id, caller))


@router.get(
    "/{job_id}/result",
    summary="The anonymized image",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
        206: {"description": "The byte range asked for (`Range: bytes=FIRST-LAST`)"},
        **error_responses(404, 409, 416),
    },
)
def get_job_result(
    services: ServicesDep,
    caller: SubmitterDep,
    job_id: UploadId,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    return result_response(services, found_job(services, job_id, caller), range_header)


@router.delete(
    "/{job_id}",
    summary="Purge the job and every stored byte of it now",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
)
def delete_job(services: ServicesDep, caller: SubmitterDep, job_id: UploadId) -> Response:
    purge_job(services, found_job(services, job_id, caller), caller)
    return Response(status_code=204)
