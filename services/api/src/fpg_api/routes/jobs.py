from fastapi import APIRouter, Response

from fpg_api.deps import Caller, ServicesDep, SubmitterDep
from fpg_api.errors import ApiError, error_responses
from fpg_api.schemas import JobView, UploadId
from jobstore import audit_events
from jobstore.blobstore import input_key, result_key
from jobstore.records import JobRecord, JobStatus

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


def found_job(services: ServicesDep, job_id: str, caller: Caller) -> JobRecord:
    """The job, if it exists and belongs to the caller (another key's job is as good as absent)."""
    job = services.records.get_job(job_id)
    if job is None or not caller.owns(job.key_id):
        raise ApiError(
            404, "not_found", f"no job {job_id}: it never existed, expired or was deleted"
        )
    return job


def result_response(services: ServicesDep, job: JobRecord) -> Response:
    """The anonymized image of a finished job; never anything else."""
    if job.status is JobStatus.FAILED:
        raise ApiError(409, "job_failed", f"the image could not be anonymized: {job.error}")
    if job.status is not JobStatus.DONE:
        raise ApiError(409, "not_ready", f"the job is {job.status.value}; try again shortly")
    data = services.blobs.get(result_key(job.id))
    if data is None or job.content_type is None:
        raise ApiError(404, "not_found", f"the result of job {job.id} expired or was deleted")
    return Response(
        data,
        media_type=job.content_type,
        headers={"X-Faces": str(job.faces or 0), "X-Job-Id": job.id},
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
        **error_responses(404, 409),
    },
)
def get_job_result(services: ServicesDep, caller: SubmitterDep, job_id: UploadId) -> Response:
    return result_response(services, found_job(services, job_id, caller))


@router.delete(
    "/{job_id}",
    summary="Purge the job and every stored byte of it now",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
)
def delete_job(services: ServicesDep, caller: SubmitterDep, job_id: UploadId) -> Response:
    job = found_job(services, job_id, caller)
    purge_jobs(services, job_id)
    services.audit.append(audit_events.job_deleted(job, caller.key_id, caller.address))
    return Response(status_code=204)


def purge_jobs(services: ServicesDep, *job_ids: str) -> None:
    """Every key of these jobs. A result reused by a duplicate upload was copied, so this never
    removes another job's result."""
    services.records.delete_jobs(*job_ids)
    services.blobs.delete(
        *(key for job_id in job_ids for key in (input_key(job_id), result_key(job_id)))
    )
