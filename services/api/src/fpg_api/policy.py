"""The operator's protection policy in the gateway: read from ``FPG_POLICY_*``, applied to every
request's parameters before anything is stored or queued."""

from collections.abc import Collection
from typing import Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from blurcore import AnonymizeParams
from blurcore.policy import ProtectionPolicy
from fpg_api.errors import ApiError

POLICY_CODE = "below_policy"


class PolicySettings(BaseSettings, ProtectionPolicy):
    """``ProtectionPolicy`` from the environment: ``FPG_POLICY_MIN_PADDING=1.8``,
    ``FPG_POLICY_ALLOWED_PROFILES=fast,default,thorough`` (comma-separated lists)."""

    model_config = SettingsConfigDict(
        env_prefix="FPG_POLICY_", extra="ignore", frozen=True, enable_decoding=False
    )

    @field_validator("allowed_profiles", "allowed_modes", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


def params_within_policy(
    requested: AnonymizeParams, sent: Collection[str], policy: ProtectionPolicy
) -> AnonymizeParams:
    """The parameters to run ``requested`` (an upload's form, whose fields ``sent`` names) with,
    or 422 naming every bound it crosses.

    A parameter the client left out takes the policy's bound where the default lies beyond it.
    One the client set weaker is refused, not raised to the bound: a client that asked for 0.99
    and silently got 0.3 would believe its output was made as it asked.
    """
    fields = set(AnonymizeParams.model_fields)
    params = policy.unset_raised(
        AnonymizeParams.model_validate(requested.model_dump(include=fields)),
        # Not ``model_fields_set``: FastAPI fills a form model's defaults in as if they were sent.
        fields.intersection(sent),
    )
    violations = policy.violations(params)
    if violations:
        raise ApiError(
            422,
            POLICY_CODE,
            "the operator's protection policy forbids weaker anonymization: "
            + "; ".join(violation.message for violation in violations),
            details=[
                {"field": v.field, "problem": f"{v.asked} is weaker than allowed ({v.allowed})"}
                for v in violations
            ],
        )
    return params


def within_detection_ceiling(params: AnonymizeParams, ceiling: int) -> AnonymizeParams:
    """``params``, or 422 when they ask for detection on a copy larger than ``ceiling``: the
    detectors' memory in the worker grows with it, and the workers are sized for the ceiling."""
    if params.max_detection_side > ceiling:
        raise ApiError(
            422,
            "detection_side_too_large",
            f"max_detection_side={params.max_detection_side} is above this service's limit of "
            f"{ceiling} (FPG_MAX_DETECTION_SIDE): the workers' memory is sized for it",
        )
    return params
