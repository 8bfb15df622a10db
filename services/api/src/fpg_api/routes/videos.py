from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from fpg_api.deps import ServicesDep, SubmitterDep
from fpg_api.errors import error_responses
from fpg_api.policy import params_within_policy, within_detection_ceiling
from fpg_api.schemas import UploadId
from fpg_api.streamed_form import (
    body_from_event_loop,
    parsed_fields,
    store_form,
    streamed_request_body,
)
from fpg_api.submission import new_id
from fpg_api.video_schemas import VideoAccepted, VideoForm, VideoView
from fpg_api.videos import (
    accept_video,
    found_video,
    purge_video,
    report_response,
    result_response,
    upload_seconds,
    video_view,
)
from jobstore.blobs import input_key

router = APIRouter(prefix="/v1/videos", tags=["videos"], responses=error_responses(401, 403))
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/x-matroska", "video/webm", "video/x-msvideo")


@router.post(
    "",
    summary="Anonymize every face in a video",
    status_code=202,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra=streamed_request_body("VideoUpload"),  # video_schemas.VideoUpload
)
async def create_video(
    services: ServicesDep, caller: SubmitterDep, request: Request, response: Response
) -> VideoAccepted:
    """The video goes to the blob store as it arrives; its header is read there, and a worker
    on the `video` queue takes it. Refused (and deleted) when it is no video, too long or too
    large."""
    settings = services.settings
    video_id = new_id()
    try:
        form = await run_in_threadpool(
            store_form,
            body_from_event_loop(request.stream()),
            request.headers.get("content-type", ""),
            services.blobs,
            input_key(video_id),
            upload_seconds(services),
        )
        requested = parsed_fields(form, VideoForm)
        params = within_detection_ceiling(
            params_within_policy(requested, form.fields.keys(), settings.policy),
            settings.max_detection_side,
        )
        await run_in_threadpool(
            accept_video, services, video_id, form, params, requested.audio, caller
        )
    except BaseException:
        await run_in_threadpool(services.blobs.delete, input_key(video_id))
        raise
    status_url = str(request.url_for("get_video", video_id=video_id))
    response.headers["Location"] = status_url
    return VideoAccepted(
        id=video_id,
        status="queued",
        status_url=status_url,
        result_url=str(request.url_for("get_video_result", video_id=video_id)),
        report_url=str(request.url_for("get_video_report", video_id=video_id)),
    )


@router.get("/{video_id}", summary="Progress of a video", responses=error_responses(404))
def get_video(services: ServicesDep, caller: SubmitterDep, video_id: UploadId) -> VideoView:
    return video_view(services, found_video(services, video_id, caller))


@router.get(
    "/{video_id}/result",
    summary="The anonymized video",
    response_class=Response,
    responses={
        200: {"content": {media_type: {} for media_type in VIDEO_TYPES}},
        206: {"description": "The byte range asked for (`Range: bytes=FIRST-LAST`)"},
        **error_responses(404, 409, 416),
    },
)
def get_video_result(
    services: ServicesDep,
    caller: SubmitterDep,
    video_id: UploadId,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    return result_response(services, found_video(services, video_id, caller), range_header)


@router.get(
    "/{video_id}/report",
    summary="Tracks with their times, faces per frame, hashes and parameters",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, **error_responses(404, 409)},
)
def get_video_report(services: ServicesDep, caller: SubmitterDep, video_id: UploadId) -> Response:
    return report_response(services, found_video(services, video_id, caller))


@router.delete(
    "/{video_id}",
    summary="Stop the work on a video and purge every stored byte of it now",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
)
def delete_video(services: ServicesDep, caller: SubmitterDep, video_id: UploadId) -> Response:
    purge_video(services, found_video(services, video_id, caller), caller)
    return Response(status_code=204)
