"""Request and response bodies, so the OpenAPI document types every answer."""

from typing import Annotated, Any, Literal

from fastapi import Path, UploadFile
from pydantic import BaseModel, Field, StringConstraints

from blurcore import AnonymizeParams
from fpg_audit import AuditRecord
from jobstore.records import JobStatus

# The ids of jobs and batches (what ``submission.new_id`` makes), wherever a request names one.
HexId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
UploadId = Annotated[HexId, Path(description="The id the upload returned.")]


class ErrorResponse(BaseModel):
    """The one error body of every 4xx and 5xx answer."""

    code: str = Field(description="Stable machine-readable reason, e.g. `unsupported_media_type`.")
    message: str = Field(description="What went wrong, in words a person understands.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field problems of a request that failed validation."
    )


class ImageUpload(AnonymizeParams):
    """An image and, optionally, any anonymization parameter (form fields beside the file)."""

    file: UploadFile = Field(description="A JPEG, PNG or WebP image.")


class BatchUpload(AnonymizeParams):
    """A ZIP of images and, optionally, the anonymization parameters for all of them."""

    file: UploadFile = Field(description="A ZIP file; folders inside it are kept.")


class JobAccepted(BaseModel):
    id: str
    status: JobStatus
    status_url: str
    result_url: str


class JobView(BaseModel):
    id: str
    status: JobStatus
    batch_id: str | None
    faces: int | None = Field(description="Faces anonymized; set once the job is done.")
    regions: list[list[float]] = Field(description="Anonymized regions as [x, y, w, h, score].")
    content_type: str | None
    input_sha256: str | None
    output_sha256: str | None
    error: str | None = Field(description="Why the job failed, when it did.")
    created_at: float
    queued_seconds: float | None = Field(description="Time between upload and start.")
    processing_seconds: float | None = Field(description="Time the worker spent on it.")
    params: AnonymizeParams


class BatchAccepted(BaseModel):
    id: str
    total: int = Field(description="Files found in the ZIP, images or not.")
    status_url: str
    result_url: str


class BatchProgress(BaseModel):
    id: str
    total: int
    done: int
    failed: int
    skipped: int
    pending: int = Field(description="Images and videos still queued or running.")
    faces: int
    finished: bool


class BatchReportImage(BaseModel):
    """One file of the ZIP: an image, a video, or a file left out."""

    path: str
    job_id: str | None = Field(
        default=None,
        description="The job, or the video (its id at /v1/videos), as named in the audit trail.",
    )
    status: Literal["done", "failed", "skipped", "expired"]
    faces: int | None = Field(default=None, description="Of a video: regions over all frames.")
    # The job's `regions`, under the name its audit record gives them (docs/compliance.md).
    boxes: list[list[float]] = Field(default_factory=list)
    frames: int | None = Field(default=None, description="A video's frames.")
    tracks: int | None = Field(default=None, description="The faces followed through a video.")
    input_sha256: str | None = None
    output_sha256: str | None = None
    error: str | None = None


class BatchResultReport(BaseModel):
    """``report.json`` in a batch's result ZIP (blurcore.batch.BatchReport is the CLI's)."""

    id: str
    params: AnonymizeParams
    summary: BatchProgress
    images: list[BatchReportImage]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    broker: Literal["reachable"]


class ServiceStatus(BaseModel):
    """Whether uploads are being worked on (``/readyz`` is about the gateway alone)."""

    workers_alive: int = Field(
        description="Workers whose heartbeat has not expired (FPG_WORKER_HEARTBEAT_TTL_SECONDS)."
    )
    queue_depth: int = Field(description="Images waiting for a worker.")
    video_queue_depth: int = Field(
        description="Tasks of videos waiting for a video worker: each a step of a video, most of "
        "them one segment's detection or writing, so one long video counts many."
    )
    oldest_heartbeat_age_seconds: float | None = Field(
        description="Seconds since the live worker heard from longest ago last beat; "
        "null when no worker is alive."
    )
    newest_heartbeat_age_seconds: float | None = Field(
        description="Seconds since the latest heartbeat of any worker; null when none is alive."
    )


MAX_WAIT_SECONDS = 30
WaitSeconds = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Wait up to this many seconds for the result and answer the image directly.",
    ),
]


class AuditPage(BaseModel):
    records: list[AuditRecord]
    next_after_seq: int | None = Field(
        description="Pass as after_seq for the next page; null on the last page."
    )
