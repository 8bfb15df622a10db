"""Where the audit trail lives (``FPG_AUDIT_DATABASE_URL``, an SQLAlchemy URL) and how its
checkpoints are kept (``FPG_AUDIT_CHECKPOINT_*``, docs/compliance.md)."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/fpg-audit.db"
DEFAULT_CHECKPOINT_DIR = Path("var/audit-checkpoints")


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FPG_", extra="ignore")

    audit_database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description=(
            "The audit trail and API keys: an SQLite file by default (relative to the working "
            "directory), postgresql+psycopg://user:password@host/db in a deployment."
        ),
    )
    audit_checkpoint_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description=(
            "Signs the audit checkpoints (HMAC-SHA256); never stored in the database. Unset: no "
            "checkpoints are written or checked (local use only, with a warning); every "
            "deployment file sets it from a Secret."
        ),
    )
    audit_checkpoint_dir: Path = Field(
        default=DEFAULT_CHECKPOINT_DIR,
        description=(
            "The directory of the checkpoint file (checkpoints.jsonl), shared by the gateway and "
            "every worker and out of the database administrator's reach."
        ),
    )
    audit_checkpoint_every_records: int = Field(
        default=1000, ge=1, description="A checkpoint at least every this many records."
    )
    audit_checkpoint_every_seconds: float = Field(
        default=300.0, gt=0, description="A checkpoint at least every this many seconds of records."
    )
