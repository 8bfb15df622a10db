"""Gateway settings: environment variables prefixed ``FPG_`` (see the README's table)."""

from pydantic import Field

from jobstore.settings import StoreSettings

MIB = 1024 * 1024


class GatewaySettings(StoreSettings):
    max_image_bytes: int = Field(default=50 * MIB, ge=1024, description="Largest single upload.")
    max_batch_bytes: int = Field(default=512 * MIB, ge=1024, description="Largest ZIP upload.")
    max_batch_uncompressed_bytes: int = Field(
        default=2048 * MIB,
        ge=1024,
        description="Most bytes a ZIP may inflate to, all entries together.",
    )
    max_batch_entries: int = Field(default=5000, ge=1, description="Most files in one ZIP.")
