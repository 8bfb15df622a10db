"""The protection policy: what a request may not weaken, and what it gets when it sets nothing."""

import pytest

from blurcore.params import AnonymizeParams, Mode, Profile
from blurcore.policy import ProtectionPolicy

DEFAULT_POLICY = ProtectionPolicy()


def test_the_library_defaults_satisfy_the_default_policy():
    assert DEFAULT_POLICY.violations(AnonymizeParams()) == []


@pytest.mark.parametrize(
    ("weaker", "field"),
    [
        ({"mediapipe_confidence": 0.99}, "mediapipe_confidence"),
        ({"centerface_confidence": 0.21}, "centerface_confidence"),
        ({"padding": 1.5}, "padding"),
        ({"strength": 0.9}, "strength"),
        ({"max_detection_side": 1024}, "max_detection_side"),
        ({"profile": Profile.FAST}, "profile"),
    ],
)
def test_each_weaker_parameter_is_named(weaker, field):
    (violation,) = DEFAULT_POLICY.violations(AnonymizeParams(**weaker))
    assert violation.field == field
    assert field in violation.message


def test_stricter_parameters_and_looks_are_not_violations():
    stricter = AnonymizeParams(
        profile=Profile.THOROUGH,
        mode=Mode.FILL,
        padding=2.5,
        strength=3.0,
        mediapipe_confidence=0.1,
        centerface_confidence=0.1,
        max_detection_side=4096,
        shape="rectangle",
        outline=True,
        jpeg_quality=60,
        nms_iou=0.9,
    )
    assert DEFAULT_POLICY.violations(stricter) == []


def test_every_bound_crossed_at_once_is_reported():
    hostile = AnonymizeParams(
        mediapipe_confidence=0.99, centerface_confidence=0.99, padding=1.0, profile=Profile.FAST
    )
    fields = {v.field for v in DEFAULT_POLICY.violations(hostile)}
    assert fields == {"mediapipe_confidence", "centerface_confidence", "padding", "profile"}


def test_unset_fields_take_the_operators_bound_and_set_ones_stay():
    policy = ProtectionPolicy(
        min_padding=2.0,
        max_centerface_confidence=0.1,
        allowed_profiles={Profile.THOROUGH},
        allowed_modes={Mode.PIXELATE, Mode.FILL},
    )
    asked = AnonymizeParams(padding=1.2, strength=2.0)
    raised = policy.unset_raised(asked, chosen={"padding", "strength"})
    assert raised.padding == 1.2  # set by the client: left for violations() to refuse
    assert raised.strength == 2.0
    assert raised.centerface_confidence == 0.1
    assert raised.profile is Profile.THOROUGH
    assert raised.mode is Mode.PIXELATE
    assert [v.field for v in policy.violations(raised)] == ["padding"]


def test_unset_fields_already_stricter_than_the_bound_are_kept():
    lenient = ProtectionPolicy(min_padding=1.2, max_mediapipe_confidence=0.6)
    assert lenient.unset_raised(AnonymizeParams(), chosen=()) == AnonymizeParams()


def test_a_policy_allows_at_least_one_profile_and_mode():
    with pytest.raises(ValueError, match="at least 1 item"):
        ProtectionPolicy(allowed_profiles=set())
    with pytest.raises(ValueError, match="at least 1 item"):
        ProtectionPolicy(allowed_modes=set())
