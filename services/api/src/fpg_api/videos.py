"""Videos, from upload to purge: what the stored upload is (its first bytes, then its container
header, never a frame), the record and the task that follow, and what a caller sees of them.

PyAV (``blurcore.video.probe``) is imported on the first video, not when the gateway starts: a
gateway that never sees one keeps its memory (``blurcore``'s light import).
"""

import math
import time
from pathlib import PurePath
from urllib.parse import quote

from fastapi import Response

from blurcore import AnonymizeParams
from blurcore.errors import UnsupportedVideoError, VideoTooLargeError
from blurcore.video.containers import SNIFFED_BYTES, container_kind
from fpg_api.deps import Caller, Services
from fpg_api.errors import ApiError
from fpg_api.jobs import delete_stored_video, stored_result_response
from fpg_api.streamed_form import StreamedForm
from fpg_api.video_schemas import VideoView
from jobstore import audit_events, batch_archives
from jobstore.blobs import input_key, report_key
from jobstore.blobs.reader import open_blob
from jobstore.celery_wiring import VIDEO_TASK, WHOLE_CLIP_SHARE, video_time_limits
from jobstore.records import JobStatus
from jobstore.video_records import AudioChoice, VideoRecord


def accept_video(
    services: Services,
    video_id: str,
    form: StreamedForm,
    params: AnonymizeParams,
    audio: AudioChoice,
    caller: Caller,
) -> VideoRecord:
    """The stored upload (``input_key(video_id)``) judged, recorded and queued; any refusal
    raises, and the caller deletes the upload."""
    settings = services.settings
    if form.file_bytes == 0:
        raise ApiError(400, "empty_file", "the uploaded file is empty")
    kind = container_kind(_first_bytes(services, video_id))
    if kind is None:
        raise ApiError(
            415, "unsupported_media_type", "not a video: an MP4, MOV, MKV, WebM or AVI is expected"
        )
    seconds, frames = _declared_length(services, video_id)
    length = seconds or settings.max_video_seconds
    video = VideoRecord(
        id=video_id,
        params=params,
        audio=audio,
        filename=form.filename or f"video{kind.suffix}",
        suffix=kind.suffix,
        content_type=kind.content_type,
        declared_frames=frames,
        key_id=caller.key_id,
        client=caller.address,
    )
    # Kept while it waits and runs, not longer: the upload was stored for the longest video.
    services.blobs.readable_for(input_key(video_id), kept_seconds(services, length))
    queue_video(services, video, length)
    return video


def queue_video(services: Services, video: VideoRecord, length: float) -> None:
    """Record a video of ``length`` seconds (the longest allowed where no header was read yet:
    a video of a ZIP) and send its first task, with time limits for that length."""
    services.videos.create(video, kept_seconds(services, length))
    plan_soft_limit, plan_hard_limit = video_time_limits(length * WHOLE_CLIP_SHARE)
    services.celery.send_task(
        VIDEO_TASK, args=[video.id], soft_time_limit=plan_soft_limit, time_limit=plan_hard_limit
    )


def kept_seconds(services: Services, length: float) -> int:
    """How long a video of ``length`` seconds is kept while it waits and runs: the retention,
    and the most its work may take were it one task."""
    return services.settings.retention_seconds + video_time_limits(length)[1]


def _first_bytes(services: Services, video_id: str) -> bytes:
    chunks = services.blobs.read(input_key(video_id))
    if chunks is None:
        return b""
    head = next(chunks, b"")[:SNIFFED_BYTES]
    getattr(chunks, "close", lambda: None)()
    return head


def upload_seconds(services: Services) -> int:
    """How long a video upload is stored before it is judged: long enough for the longest."""
    return kept_seconds(services, services.settings.max_video_seconds)


def _declared_length(services: Services, video_id: str) -> tuple[float, int]:
    """Seconds and frames the container header declares (0 where it declares none), or the
    refusal: too long, frames too large, or a header that cannot be read."""
    from blurcore.video.probe import VideoLimits, probe  # PyAV: see the module's docstring

    reader = open_blob(services.blobs, input_key(video_id))
    if reader is None:
        raise ApiError(404, "not_found", "the upload expired before it could be read")
    limit = services.settings.max_video_seconds
    try:
        with reader:
            info = probe(reader, VideoLimits(max_seconds=math.inf))
    except VideoTooLargeError as error:
        raise ApiError(413, "video_too_large", str(error)) from error
    except UnsupportedVideoError as error:
        raise ApiError(422, "unreadable_video", str(error)) from error
    if info.seconds > limit:
        raise ApiError(
            413,
            "video_too_long",
            f"the video lasts {info.seconds:.0f} s; the limit is {limit:.0f} s",
        )
    return info.seconds, info.frames


def found_video(services: Services, video_id: str, caller: Caller) -> VideoRecord:
    """The video, if it exists and belongs to the caller (another key's is as good as absent)."""
    video = services.videos.get(video_id)
    if video is None or not caller.owns(video.key_id):
        raise ApiError(
            404, "not_found", f"no video {video_id}: it never existed, expired or was deleted"
        )
    return video


def video_view(services: Services, video: VideoRecord) -> VideoView:
    """What the caller sees; a failed video keeps the progress it had made, so ``percent``
    never goes down (only ``done`` sets 100)."""
    running = video.status is JobStatus.RUNNING
    progress = (
        services.videos.progress(video) if running or video.status is JobStatus.FAILED else None
    )
    view = VideoView(
        id=video.id,
        status=video.status,
        filename=video.filename,
        stage=progress.stage if progress and running else None,
        frames_done=progress.frames_done if progress else 0,
        frames_total=progress.frames_total if progress else video.expected_frames,
        percent=progress.percent if progress else 0.0,
        frames_per_second=progress.frames_per_second if progress else None,
        seconds_left=progress.seconds_left if progress and running else None,
        faces=video.faces,
        tracks=video.tracks,
        error=video.error,
        created_at=video.created_at,
        started_at=video.started_at,
        finished_at=video.finished_at,
        result_expires_at=video.result_expires_at,
    )
    if video.status is JobStatus.DONE and video.frames is not None:
        seconds = (video.finished_at or time.time()) - (video.started_at or video.created_at)
        view.frames_done = view.frames_total = video.frames
        view.percent, view.seconds_left = 100.0, 0.0
        view.frames_per_second = round(video.frames / seconds, 2) if seconds > 0 else None
    return view


def finished_video(video: VideoRecord) -> None:
    """Nothing but a finished video's own outputs is ever served: 409 until then."""
    if video.status is JobStatus.FAILED:
        raise ApiError(409, "video_failed", f"the video could not be anonymized: {video.error}")
    if video.status is not JobStatus.DONE:
        raise ApiError(409, "not_ready", f"the video is {video.status.value}; try again later")


def result_response(services: Services, video: VideoRecord, range_header: str | None) -> Response:
    finished_video(video)
    name = f"{PurePath(video.filename).stem or 'video'}-anonymized{video.suffix}"
    disposition = f"attachment; filename=\"{_quoted(name)}\"; filename*=UTF-8''{_encoded(name)}"
    return stored_result_response(
        services,
        video.id,
        video.content_type,
        range_header,
        {"Content-Disposition": disposition, "X-Video-Id": video.id},
    )


def report_response(services: Services, video: VideoRecord) -> Response:
    finished_video(video)
    report = services.blobs.get(report_key(video.id))
    if report is None:
        raise ApiError(404, "not_found", f"the report of {video.id} expired or was deleted")
    return Response(report, media_type="application/json")


def purge_video(services: Services, video: VideoRecord, caller: Caller) -> None:
    """Every stored byte of the video (``delete_stored_video``), audited; a video of a batch
    not yet copied out of the batch's ZIP gives up its hold on it, as a job of the batch does."""
    destroyed = delete_stored_video(services, video)
    services.audit.append(
        audit_events.job_deleted(video, caller.key_id, caller.address),
        audit_events.keys_destroyed(video.id, video.batch_id, destroyed),
    )
    if video.batch_id is not None and video.archive_entry is not None:
        batch_archives.count_off(
            services.records, services.blobs, services.audit, video.batch_id, video.id
        )


def _quoted(name: str) -> str:
    """The name for the plain ``filename=``: ASCII, without quotes or backslashes."""
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)


def _encoded(name: str) -> str:
    return quote(name, safe="")
