"""The operator's floor under every request: whoever asks may ask for more protection, never less.

A request's parameters come from whoever sends it; the policy comes from whoever runs the service.
Each bound names one way a parameter can make the output less private: a detector threshold
raised until nothing is found, padding shrunk until the hairline and chin show, a weaker blur, a
profile with fewer detectors, detection on a smaller copy of the image. Parameters that only
change how the output looks (shape inside the padded box, outline, JPEG quality, NMS overlap,
which merges boxes into their union and so never uncovers a face) are not bounded.
"""

from collections.abc import Collection
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from blurcore.params import AnonymizeParams, Mode, Profile

_DEFAULTS = AnonymizeParams()


@dataclass(frozen=True)
class PolicyViolation:
    field: str
    asked: object
    allowed: str
    """The policy's bound, in words: "at most 0.3", "one of default, thorough"."""

    @property
    def message(self) -> str:
        return f"{self.field}={self.asked} is weaker than the policy allows ({self.allowed})"


class ProtectionPolicy(BaseModel):
    """Bounds that no request may cross; the defaults are the library's own defaults, so out of
    the box a client may only ask for stricter settings than blurcore's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_profiles: frozenset[Profile] = Field(
        default=frozenset({Profile.DEFAULT, Profile.THOROUGH}),
        min_length=1,
        description="The fast profile runs one detector and finds far fewer faces "
        "(docs/benchmarks.md): allowed only where the operator says so.",
    )
    allowed_modes: frozenset[Mode] = Field(default=frozenset(Mode), min_length=1)
    min_padding: float = Field(default=_DEFAULTS.padding, ge=1.0, le=3.0)
    min_strength: float = Field(default=_DEFAULTS.strength, ge=0.5, le=4.0)
    max_mediapipe_confidence: float = Field(
        default=_DEFAULTS.mediapipe_confidence, ge=0.05, le=0.99
    )
    max_centerface_confidence: float = Field(
        default=_DEFAULTS.centerface_confidence, ge=0.05, le=0.99
    )
    min_detection_side: int = Field(default=_DEFAULTS.max_detection_side, ge=256, le=8192)
    """The least ``max_detection_side`` a request may ask for: a smaller copy hides small faces."""

    def unset_raised(self, params: AnonymizeParams, chosen: Collection[str]) -> AnonymizeParams:
        """``params`` with every field outside ``chosen`` (what the client did not set) moved to
        this policy's bound where its default lies beyond it: asking for nothing gets the
        operator's floor, never a refusal."""
        fixed: dict[str, object] = {
            "padding": max(params.padding, self.min_padding),
            "strength": max(params.strength, self.min_strength),
            "mediapipe_confidence": min(params.mediapipe_confidence, self.max_mediapipe_confidence),
            "centerface_confidence": min(
                params.centerface_confidence, self.max_centerface_confidence
            ),
            "max_detection_side": max(params.max_detection_side, self.min_detection_side),
        }
        if params.profile not in self.allowed_profiles:
            # The least costly profile allowed: Profile lists them from fast to thorough.
            fixed["profile"] = next(p for p in Profile if p in self.allowed_profiles)
        if params.mode not in self.allowed_modes:
            fixed["mode"] = next(m for m in Mode if m in self.allowed_modes)
        return params.model_copy(
            update={name: value for name, value in fixed.items() if name not in chosen}
        )

    def violations(self, params: AnonymizeParams) -> list[PolicyViolation]:
        """Every way ``params`` would protect less than this policy demands (empty: none)."""
        found = []
        if params.profile not in self.allowed_profiles:
            found.append(
                PolicyViolation("profile", params.profile.value, _one_of(self.allowed_profiles))
            )
        if params.mode not in self.allowed_modes:
            found.append(PolicyViolation("mode", params.mode.value, _one_of(self.allowed_modes)))
        for field, asked, bound, least in (
            ("padding", params.padding, self.min_padding, True),
            ("strength", params.strength, self.min_strength, True),
            (
                "mediapipe_confidence",
                params.mediapipe_confidence,
                self.max_mediapipe_confidence,
                False,
            ),
            (
                "centerface_confidence",
                params.centerface_confidence,
                self.max_centerface_confidence,
                False,
            ),
            ("max_detection_side", params.max_detection_side, self.min_detection_side, True),
        ):
            if (asked < bound) if least else (asked > bound):
                found.append(
                    PolicyViolation(field, asked, f"{'at least' if least else 'at most'} {bound}")
                )
        return found


def _one_of(allowed: frozenset[Profile] | frozenset[Mode]) -> str:
    return "one of " + ", ".join(sorted(member.value for member in allowed))
