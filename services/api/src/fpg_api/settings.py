"""Gateway settings: environment variables prefixed ``FPG_`` (see the README's table)."""

from pydantic import Field

from blurcore.policy import ProtectionPolicy
from fpg_api.policy import PolicySettings
from fpg_audit.settings import AuditSettings
from jobstore.settings import StoreSettings

MIB = 1024 * 1024


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
    max_batch_uncompressed_bytes: int = Field(
        default=2048 * MIB,
        ge=1024,
        description="Most bytes a ZIP may inflate to, all entries together.",
    )
    max_batch_entries: int = Field(default=5000, ge=1, description="Most files in one ZIP.")
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
        description="How often the gateway records, in the audit trail, results whose retention "
        "ended (the proof that expiry happened).",
    )
