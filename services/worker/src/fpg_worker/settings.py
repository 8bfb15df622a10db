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
