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
