"""The operator's protection policy, against the real gateway and worker: no request can make
the output less private than the policy, and a request that sets nothing gets the policy."""

from collections.abc import Iterator

import pytest

from blurcore.policy import ProtectionPolicy
from fpg_api.settings import GatewaySettings

from ..conftest import private_redis, running_stack, wait_for_batch, wait_for_job, zip_of

HOSTILE = {"mediapipe_confidence": "0.99", "centerface_confidence": "0.99"}


def _stored_jobs(stack) -> int:
    return len(stack.redis.keys("fpg:job:*"))


@pytest.mark.parametrize(
    ("path", "name", "payload"),
    [("/v1/images", "me.jpg", "jpeg"), ("/v1/batches", "album.zip", "zip")],
)
def test_raised_thresholds_are_refused_naming_the_policy(
    client, stack, astronaut_jpeg, path, name, payload
):
    """The recipe that returned a recognizable portrait, 'done', 0 faces."""
    data = astronaut_jpeg if payload == "jpeg" else zip_of({"me.jpg": astronaut_jpeg})
    before = _stored_jobs(stack)
    answer = client.post(path, files={"file": (name, data)}, data=HOSTILE)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "below_policy"
    assert "policy" in body["message"]
    assert {d["field"] for d in body["details"]} == set(HOSTILE)
    assert _stored_jobs(stack) == before  # nothing stored, nothing queued


def test_the_fast_profile_and_thinner_padding_are_refused_by_default(client, astronaut_jpeg):
    answer = client.post(
        "/v1/images",
        files={"file": ("me.jpg", astronaut_jpeg)},
        data={"profile": "fast", "padding": "1.2"},
    )
    assert answer.status_code == 422
    assert {d["field"] for d in answer.json()["details"]} == {"profile", "padding"}


def test_stricter_settings_are_accepted_as_asked(client, astronaut_jpeg):
    stricter = {"padding": "2.2", "centerface_confidence": "0.1", "profile": "thorough"}
    answer = client.post("/v1/images", files={"file": ("me.jpg", astronaut_jpeg)}, data=stricter)
    assert answer.status_code == 202, answer.text
    job = wait_for_job(client, answer.json()["id"])
    assert job["status"] == "done"
    assert job["faces"] == 1
    params = job["params"]
    assert (params["padding"], params["centerface_confidence"], params["profile"]) == (
        2.2,
        0.1,
        "thorough",
    )


def test_detection_on_a_copy_larger_than_the_workers_are_sized_for_is_refused(
    client, astronaut_jpeg
):
    answer = client.post(
        "/v1/images",
        files={"file": ("me.jpg", astronaut_jpeg)},
        data={"max_detection_side": "8192"},
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "detection_side_too_large"
    assert "FPG_MAX_DETECTION_SIDE" in answer.json()["message"]


def test_settings_refuse_a_policy_floor_above_the_ceiling():
    with pytest.raises(ValueError, match="every request would be refused"):
        GatewaySettings(policy=ProtectionPolicy(min_detection_side=4096), max_detection_side=2048)


@pytest.fixture(scope="module")
def strict_operator() -> Iterator:
    """An operator who wants more padding, allows the fast profile and forbids blurring."""
    with (
        private_redis() as redis_url,
        running_stack(
            redis_url,
            worker_processes=1,
            FPG_POLICY_MIN_PADDING="2.0",
            FPG_POLICY_ALLOWED_PROFILES="fast,default",
            FPG_POLICY_ALLOWED_MODES="pixelate, fill",
        ) as started,
        started.client() as http,
    ):
        yield http


def test_a_request_setting_nothing_gets_the_operators_floor(strict_operator, astronaut_jpeg):
    answer = strict_operator.post("/v1/images", files={"file": ("me.jpg", astronaut_jpeg)})
    assert answer.status_code == 202, answer.text
    job = wait_for_job(strict_operator, answer.json()["id"])
    assert job["status"] == "done"
    assert (job["params"]["padding"], job["params"]["mode"]) == (2.0, "pixelate")


def test_the_operators_policy_bounds_every_endpoint(strict_operator, astronaut_jpeg):
    thinner = strict_operator.post(
        "/v1/batches",
        files={"file": ("album.zip", zip_of({"me.jpg": astronaut_jpeg}))},
        data={"padding": "1.8", "mode": "blur"},
    )
    assert thinner.status_code == 422
    assert {d["field"] for d in thinner.json()["details"]} == {"padding", "mode"}
    allowed = strict_operator.post(
        "/v1/batches",
        files={"file": ("album.zip", zip_of({"me.jpg": astronaut_jpeg}))},
        data={"profile": "fast", "mode": "fill"},
    )
    assert allowed.status_code == 202, allowed.text
    assert wait_for_batch(strict_operator, allowed.json()["id"])["done"] == 1


def test_the_web_page_offers_only_what_the_policy_allows(strict_operator):
    page = strict_operator.get("/").text
    assert 'min="2" max="3.0"' in page
    assert 'value="2"' in page
    assert '<option value="blur" disabled hidden' in page
    assert '<option value="pixelate" selected' in page
    assert '<option value="thorough" disabled hidden' in page
    assert '<option value="default" selected' in page
