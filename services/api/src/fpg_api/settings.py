"""Gateway settings: environment variables prefixed ``FPG_`` (see the README's table)."""

from dataclasses import dataclass
from typing import Self

from pydantic import Field, model_validator

from blurcore.params import MIN_DETECTION_SIDE
from blurcore.policy import ProtectionPolicy
from fpg_api.policy import PolicySettings
from fpg_audit.settings import AuditSettings
from jobstore.blobs.base import CHUNK_BYTES
from jobstore.settings import StoreSettings

MIB = 1024 * 1024
# An upload is held twice while the gateway handles it: the parsed form, and the bytes read from
# it to be stored.
UPLOAD_COPIES = 2  # an upload in the gateway's memory: the parsed form, and the bytes read from it


GIB = 1024 * MIB


def upload_memory(path: str, declared: int, max_image_bytes: int) -> int:
    """What an upload of ``declared`` bytes to ``path`` may take of the gateway's memory: an
    image is held whole, twice; a ZIP streams to the blob store, and of it only one entry, an
    image at most, is ever held; a video streams to the blob store, a chunk at a time, and is
    then probed through it (its header only)."""
    if path.startswith("/v1/videos"):
        held = min(declared, CHUNK_BYTES)
    elif path.startswith("/v1/batches"):
        held = min(declared, max_image_bytes)
    else:
        held = declared
    return UPLOAD_COPIES * held


@dataclass(frozen=True)
class UploadLimit:
    """The largest body a path takes; a video's 413 says so (``video_too_large``)."""

    bytes: int
    of_videos: bool = False


class GatewaySettings(StoreSettings, AuditSettings):
    require_api_keys: bool = Field(
        default=False,
        description=(
            "Refuse requests without a valid API key (fpg-keys). Off only for local use: "
            "every deployment file turns it on."
        ),
    )
    policy: ProtectionPolicy = Field(
        default_factory=PolicySettings,
        description="The floor under every request's parameters, from FPG_POLICY_* variables.",
    )
    max_image_bytes: int = Field(default=50 * MIB, ge=1024, description="Largest single upload.")
    max_batch_bytes: int = Field(default=512 * MIB, ge=1024, description="Largest ZIP upload.")
    max_video_bytes: int = Field(
        default=4 * GIB, ge=1024, description="Largest video upload (streamed to the blob store)."
    )
    max_batch_uncompressed_bytes: int = Field(
        default=2048 * MIB,
        ge=1024,
        description="Most bytes a ZIP may inflate to, all entries together.",
    )
    max_batch_entries: int = Field(default=5000, ge=1, description="Most files in one ZIP.")
    # A batch is answered when its last file is done, and its videos queue up with everyone's:
    # a ZIP of hundreds of clips would hold the video queue for hours on one request.
    max_batch_videos: int = Field(
        default=20,
        ge=0,
        description="Most videos in one ZIP; a ZIP with more is refused (413 too_many_videos).",
    )
    max_detection_side: int = Field(
        default=2048,
        ge=MIN_DETECTION_SIDE,
        description="The largest max_detection_side a request may ask for. The detectors keep "
        "memory for the largest input they have seen: a warm worker process holds ~1,060 MiB "
        "after 2048 px, 2.1 GiB after a 3000x3000 view (measured); the worker sizing rule in "
        "docs/deployment.md assumes 2048.",
    )
    # Above what one well-behaved client runs at once (the web page: 3; the load bench: 4), with
    # room for the moment between an answer and the release of its slot.
    max_uploads_per_client: int = Field(
        default=8,
        ge=1,
        description="Uploads one client (API key, or address without keys) may have in flight "
        "to one gateway process; past it 429 with Retry-After.",
    )
    upload_memory_budget_bytes: int = Field(
        default=1536 * MIB,
        ge=1024,
        description="Memory one gateway process lets uploads in flight take; an image reserves "
        "twice its size (the parsed form and the bytes stored), a ZIP twice the largest image "
        "(it streams to the blob store; one entry at a time is held), a video twice a chunk "
        "(1 MiB; it streams to the blob store); past it 503 with Retry-After. Keep it under "
        "the gateway's memory limit minus about 200 MiB.",
    )
    upload_idle_seconds: float = Field(
        default=30.0, gt=0, description="An upload that sends nothing for this long gets 408."
    )
    upload_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="After this long, an upload slower than the minimum rate gets 408.",
    )
    upload_min_bytes_per_second: int = Field(
        default=16 * 1024, ge=0, description="The slowest mean rate an upload may arrive at."
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A connection whose request headers are not complete after this long is "
        "closed (fpg-gateway only).",
    )
    reuse_results: bool = Field(
        default=True,
        description=(
            "Answer a duplicate upload (same bytes, same parameters) with the stored result. "
            "Off only to measure processing (the benchmarks)."
        ),
    )
    expiry_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the gateway removes expired blobs and records, in the audit "
        "trail, results whose retention ended (the proof that expiry happened).",
    )

    def upload_limit(self, path: str) -> UploadLimit:
        if path.startswith("/v1/videos"):
            return UploadLimit(self.max_video_bytes, of_videos=True)
        if path.startswith("/v1/batches"):
            return UploadLimit(self.max_batch_bytes)
        return UploadLimit(self.max_image_bytes)

    @model_validator(mode="after")
    def _largest_upload_fits_the_budget(self) -> Self:
        if UPLOAD_COPIES * self.max_image_bytes > self.upload_memory_budget_bytes:
            raise ValueError(
                f"FPG_UPLOAD_MEMORY_BUDGET_BYTES must be at least {UPLOAD_COPIES} times "
                "FPG_MAX_IMAGE_BYTES, or the largest image could never be admitted"
            )
        return self

    @model_validator(mode="after")
    def _policy_floor_under_the_ceiling(self) -> Self:
        if self.policy.min_detection_side > self.max_detection_side:
            raise ValueError(
                "FPG_POLICY_MIN_DETECTION_SIDE is above FPG_MAX_DETECTION_SIDE: every request "
                "would be refused"
            )
        return self
