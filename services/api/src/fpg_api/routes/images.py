from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from blurcore import AnimatedImageError, ImageTooLargeError, UnsupportedImageError, imageio
from fpg_api.deps import ServicesDep, SubmitterDep
from fpg_api.errors import ApiError, error_responses
from fpg_api.jobs import result_response, wait_until_finished
from fpg_api.policy import params_within_policy, within_detection_ceiling
from fpg_api.schemas import ImageUpload, JobAccepted, WaitSeconds
from fpg_api.submission import submit_job
from jobstore.records import JobRecord, JobStatus

router = APIRouter(prefix="/v1/images", tags=["images"], responses=error_responses(401, 403))


def accepted(request: Request, job: JobRecord) -> JobAccepted:
    return JobAccepted(
        id=job.id,
        status=job.status,
        status_url=str(request.url_for("get_job", job_id=job.id)),
        result_url=str(request.url_for("get_job_result", job_id=job.id)),
    )


@router.post(
    "",
    summary="Anonymize one image",
    response_model=JobAccepted,
    status_code=202,
    responses={
        200: {
            "description": "With ?wait=: the anonymized image, ready in time",
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
        },
        **error_responses(400, 409, 413, 415, 422, 503),
    },
)
async def create_image_job(
    services: ServicesDep,
    caller: SubmitterDep,
    request: Request,
    response: Response,
    upload: Annotated[ImageUpload, Form(media_type="multipart/form-data")],
    wait: Annotated[WaitSeconds, Query()] = 0.0,
) -> JobAccepted | Response:
    settings = services.settings
    params = within_detection_ceiling(
        params_within_policy(upload, (await request.form()).keys(), settings.policy),
        settings.max_detection_side,
    )
    data = await upload.file.read()
    if not data:
        raise ApiError(400, "empty_file", "the uploaded file is empty")
    try:
        imageio.inspect(data, services.settings.max_pixels)
    except ImageTooLargeError as error:
        raise ApiError(413, "image_too_large", str(error)) from error
    except AnimatedImageError as error:
        raise ApiError(422, "animated_image", str(error)) from error
    except UnsupportedImageError as error:
        if imageio.sniff_format(data) is None:
            raise ApiError(415, "unsupported_media_type", str(error)) from error
        raise ApiError(422, "unreadable_image", str(error)) from error
    job = await run_in_threadpool(
        submit_job, services, data, upload.file.filename or "image", params, caller
    )
    if wait > 0:
        job = await wait_until_finished(services, job, wait)
        if job.status is JobStatus.DONE:
            return await run_in_threadpool(result_response, services, job)
        if job.status is JobStatus.FAILED:
            raise ApiError(
                422, "unprocessable_image", f"the image could not be anonymized: {job.error}"
            )
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
    return accepted(request, job)
