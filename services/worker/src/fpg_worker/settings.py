from pathlib import Path

from pydantic import Field

from fpg_audit.settings import AuditSettings
from jobstore.settings import StoreSettings


class WorkerSettings(StoreSettings, AuditSettings):
    inference_threads: int = Field(
        default=1,
        ge=1,
        description="Threads per worker process, for detection and OpenCV's image operations; "
        "with one process per core, 1 uses every core.",
    )
    max_job_attempts: int = Field(
        default=3,
        ge=1,
        description="Times a job may start; one whose worker process died this many times while "
        "processing it is marked failed instead of being delivered again.",
    )
    worker_heartbeat_ttl_seconds: int = Field(
        default=30,
        ge=1,
        description="A worker counts as alive this long after its latest heartbeat; it beats "
        "three times as often.",
    )
    video_segment_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A video is cut at keyframes into segments of about this many seconds, "
        "detected and written by as many tasks, on any free video worker: shorter segments "
        "spread a video over more workers, and each costs a seek and an encoder start.",
    )
    worker_scratch_dir: Path | None = Field(
        default=None,
        description="Where a video's anonymized output is written before it is stored (as large "
        "as the result; removed once stored); unset: the system's temporary directory. Originals "
        "are never written here: they are read from the blob store.",
    )
