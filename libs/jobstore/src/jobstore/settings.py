"""Settings shared by gateway and workers, from environment variables prefixed ``FPG_``."""

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from blurcore.imageio import DEFAULT_MAX_PIXELS


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FPG_", extra="ignore")

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Broker, job and batch records, and the blobs' data keys; no payloads.",
    )
    blob_url: str = Field(
        default="file:./var/blobs",
        pattern=r"^(file:.+|s3://[^/?]+.*)$",
        description="Where originals and results are stored, encrypted: a directory "
        "(file:PATH, shared by the gateway and every worker) or an S3-compatible bucket "
        "(s3://BUCKET/PREFIX[?sse=AES256|aws:kms]; endpoint, region and credentials from "
        "AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).",
    )
    retention_seconds: int = Field(
        default=3600,
        ge=60,
        description="Every stored key (originals, results, job records) expires after this.",
    )
    key_prefix: str = Field(default="fpg", pattern=r"^[A-Za-z0-9_.-]+$")
    max_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS,
        ge=1_000_000,
        description="Images declaring more pixels are refused before decoding (bomb guard), and "
        "so are images whose decoded pixels take more memory than 8-bit RGBA at this many pixels "
        "(blurcore.image_memory): this sizes a worker process's memory.",
    )
    max_video_seconds: float = Field(
        default=14400.0,
        gt=0,
        description="Longest video, as its container header declares it, judged before any "
        "frame is decoded: by the gateway for an upload, by the worker for a video of a ZIP.",
    )
    task_soft_time_limit: int = Field(
        default=120, ge=1, description="Seconds before a task is told to stop."
    )
    task_hard_time_limit: int = Field(
        default=150, ge=2, description="Seconds before its process is killed."
    )

    @model_validator(mode="after")
    def _hard_limit_after_soft(self) -> Self:
        if self.task_hard_time_limit <= self.task_soft_time_limit:
            raise ValueError("the hard time limit must be longer than the soft one")
        return self
