"""Videos, from upload to purge: what the stored upload is (its first bytes, then its container
header, never a frame), the record and the task that follow, and what a caller sees of them.

PyAV (``blurcore.video.probe``) is imported on the first video, not when the gateway starts: a
gateway that never sees one keeps its memory (``blurcore``'s light import).
"""

import math
import time
from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import quote

from fastapi import Response

from blurcore import AnonymizeParams
from blurcore.errors import UnsupportedVideoError, VideoTooLargeError
from fpg_api.deps import Caller, Services
from fpg_api.errors import ApiError
from fpg_api.jobs import stored_result_response
from fpg_api.streamed_form import StreamedForm
from fpg_api.video_schemas import VideoView
from jobstore import audit_events
from jobstore.blobs import input_key, report_key, result_key
from jobstore.blobs.base import video_work_keys
from jobstore.blobs.reader import open_blob
from jobstore.celery_wiring import VIDEO_TASK, WHOLE_CLIP_SHARE, video_time_limits
from jobstore.records import JobStatus
from jobstore.video_records import AudioChoice, VideoRecord

SNIFFED_BYTES = 64  # a Matroska header names its kind (webm or matroska) within these


@dataclass(frozen=True)
class ContainerKind:
    suffix: str  # of the stored upload and the result; the worker writes what it says
    content_type: str


MP4 = ContainerKind(".mp4", "video/mp4")
QUICKTIME = ContainerKind(".mov", "video/quicktime")
MATROSKA = ContainerKind(".mkv", "video/x-matroska")
WEBM = ContainerKind(".webm", "video/webm")
AVI = ContainerKind(".avi", "video/x-msvideo")
# The top-level boxes an ISO media file (MP4, MOV) may open with.
_ISO_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"})


def container_kind(head: bytes) -> ContainerKind | None:
    """The container the first bytes of a file announce, or None for anything else (an image, a
    document, audio alone): those are refused before FFmpeg, which would open many of them."""
    if head[4:8] in _ISO_FIRST_BOXES:
        return QUICKTIME if head[8:12] == b"qt  " else MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or WebM, its DocType says which
        return WEBM if b"webm" in head[:SNIFFED_BYTES] else MATROSKA
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return AVI
    return None


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
    hard_limit = video_time_limits(length)[1]  # of the whole video's work, were it one task
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
    kept_seconds = settings.retention_seconds + hard_limit
    services.blobs.readable_for(input_key(video_id), kept_seconds)
    services.videos.create(video, kept_seconds)
    plan_soft_limit, plan_hard_limit = video_time_limits(length * WHOLE_CLIP_SHARE)
    services.celery.send_task(
        VIDEO_TASK, args=[video_id], soft_time_limit=plan_soft_limit, time_limit=plan_hard_limit
    )
    return video


def _first_bytes(services: Services, video_id: str) -> bytes:
    chunks = services.blobs.read(input_key(video_id))
    if chunks is None:
        return b""
    head = next(chunks, b"")[:SNIFFED_BYTES]
    getattr(chunks, "close", lambda: None)()
    return head


def upload_seconds(services: Services) -> int:
    """How long a video upload is stored before it is judged: long enough for the longest."""
    settings = services.settings
    return settings.retention_seconds + video_time_limits(settings.max_video_seconds)[1]


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
    """Record first (a worker on it stops at its next progress report and stores nothing), data
    keys next (no copy can be read from then on), files last."""
    services.videos.delete(video)
    stored = [
        input_key(video.id),
        result_key(video.id),
        report_key(video.id),
        *video_work_keys(video.id, video.segments or 0),
    ]
    destroyed = services.blobs.destroy_keys(*stored)
    services.blobs.delete(*stored)
    services.audit.append(
        audit_events.job_deleted(video, caller.key_id, caller.address),
        audit_events.keys_destroyed(video.id, None, destroyed),
    )


def _quoted(name: str) -> str:
    """The name for the plain ``filename=``: ASCII, without quotes or backslashes."""
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)


def _encoded(name: str) -> str:
    return quote(name, safe="")
