"""Where the audit trail lives: ``FPG_AUDIT_DATABASE_URL`` (an SQLAlchemy URL)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/fpg-audit.db"


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FPG_", extra="ignore")

    audit_database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description=(
            "The audit trail and API keys: an SQLite file by default (relative to the working "
            "directory), postgresql+psycopg://user:password@host/db in a deployment."
        ),
    )
