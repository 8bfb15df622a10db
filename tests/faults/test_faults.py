"""Faults with nothing lost: a worker child killed mid-batch or mid-segment of a video, Redis
restarting, a task over its time limit, a worker told to stop while busy. Each test runs its own
Redis, worker and gateway."""

import io
import json
import os
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from fpg_api.localstack import start_private_redis, stop_all
from fpg_audit import AuditStore

from ..blurcore.video.clips import ClipSpec, make_clip
from ..conftest import (
    Stack,
    archive_gone,
    private_redis,
    running_stack,
    wait_for_batch,
    wait_for_job,
    zip_of,
)


@pytest.fixture
def own_redis() -> Iterator[str]:
    """Each fault test breaks its Redis, so none shares the session's."""
    with private_redis() as url:
        yield url


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _large_noisy_jpeg() -> bytes:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, size=(2000, 3000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG", quality=75)  # under the 5 MiB test limit
    return buffer.getvalue()


def test_worker_child_killed_mid_batch_loses_nothing(own_redis, astronaut_jpeg):
    with running_stack(own_redis, worker_processes=2) as stack, stack.client() as client:
        photos = {f"staff/{i:02d}.jpg": astronaut_jpeg for i in range(12)}
        batch = client.post("/v1/batches", files={"file": ("staff.zip", zip_of(photos))}).json()
        deadline = time.monotonic() + 30
        while client.get(f"/v1/batches/{batch['id']}").json()["done"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        victims = _children(stack.worker.pid)
        assert victims, "the prefork worker should have child processes"
        os.kill(victims[0], signal.SIGKILL)

        progress = wait_for_batch(client, batch["id"], timeout=120)
        assert (progress["done"], progress["failed"], progress["pending"]) == (12, 0, 0)
        result = client.get(batch["result_url"])
        with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
            names = archive.namelist()
            report = json.loads(archive.read("report.json"))
        assert sorted(names) == sorted([f"staff/{i:02d}.jpg" for i in range(12)] + ["report.json"])
        assert [image["status"] for image in report["images"]] == ["done"] * 12
        # The killed job found its entry again: the ZIP stayed until the last job, then went.
        assert archive_gone(stack, batch["id"])


def test_worker_child_killed_mid_segment_still_finishes_the_video_once(own_redis, tmp_path):
    clip = tmp_path / "lesson.mp4"
    make_clip(clip, ClipSpec(frames=70, size=(960, 540), keyframe_every=10))
    with (
        running_stack(own_redis, worker_processes=2, FPG_VIDEO_SEGMENT_SECONDS="0.4") as stack,
        stack.client() as client,
    ):
        video = client.post("/v1/videos", files={"file": ("lesson.mp4", clip.read_bytes())}).json()
        deadline = time.monotonic() + 60
        while client.get(video["status_url"]).json()["percent"] <= 0:
            assert time.monotonic() < deadline, "the video never started"
            time.sleep(0.02)
        victims = _children(stack.worker.pid)
        assert victims, "the prefork worker should have child processes"
        os.kill(victims[0], signal.SIGKILL)

        deadline = time.monotonic() + 120
        while (status := client.get(video["status_url"]).json())["status"] == "running":
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["status"] == "done", status
        result = client.get(video["result_url"])
        with av.open(io.BytesIO(result.content)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 70
        events = [r.event for r in AuditStore.connect(stack.audit_database_url).records()]
        assert events.count("video") == 1


def test_redis_restart_answers_503_then_recovers(own_redis, astronaut_jpeg):
    with running_stack(own_redis, worker_processes=1) as stack, stack.client() as client:
        upload = {"file": ("a.jpg", astronaut_jpeg)}
        assert client.post("/v1/images?wait=30", files=upload).status_code == 200
        stack.redis.shutdown(nosave=True)
        time.sleep(0.2)
        down = client.post("/v1/images", files=upload)
        assert down.status_code == 503
        assert down.json()["code"] == "broker_unreachable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200

        restarted = start_private_redis(own_redis)
        try:
            deadline = time.monotonic() + 60
            answer = None
            while time.monotonic() < deadline:
                answer = client.post(
                    "/v1/images?wait=30", files={"file": ("a.jpg", astronaut_jpeg)}
                )
                if answer.status_code == 200:
                    break
                time.sleep(0.5)
            assert answer is not None
            assert answer.status_code == 200  # gateway and worker reconnected by themselves
            assert int(answer.headers["x-faces"]) >= 1
        finally:
            stop_all([restarted])


def test_task_over_time_limit_fails_and_batch_finishes(own_redis, astronaut_jpeg):
    limits = {"FPG_TASK_SOFT_TIME_LIMIT": "1", "FPG_TASK_HARD_TIME_LIMIT": "30"}
    with running_stack(own_redis, worker_processes=1, **limits) as stack, stack.client() as client:
        slow = _large_noisy_jpeg()
        batch = client.post(
            "/v1/batches",
            files={"file": ("mixed.zip", zip_of({"slow.jpg": slow, "quick.jpg": astronaut_jpeg}))},
            data={"profile": "thorough", "denoise": "true"},
        ).json()
        progress = wait_for_batch(client, batch["id"], timeout=120)
        assert progress["finished"]
        with zipfile.ZipFile(io.BytesIO(client.get(batch["result_url"]).content)) as archive:
            report = {i["path"]: i for i in json.loads(archive.read("report.json"))["images"]}
            assert "slow.jpg" not in archive.namelist()  # the original never comes back
        assert report["slow.jpg"]["status"] == "failed"
        assert "time limit" in report["slow.jpg"]["error"]


def test_worker_sigterm_finishes_current_task(own_redis):
    with running_stack(own_redis, worker_processes=1) as stack, stack.client() as client:
        job_id = client.post(
            "/v1/images",
            files={"file": ("big.jpg", _large_noisy_jpeg())},
            data={"denoise": "true"},
        ).json()["id"]
        deadline = time.monotonic() + 30
        while client.get(f"/v1/jobs/{job_id}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stack.worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        assert stack.worker.wait(timeout=60) == 0
        assert wait_for_job(client, job_id, timeout=5)["status"] == "done"
        assert httpx.get(f"{stack.url}/v1/jobs/{job_id}/result").status_code == 200


def _job_record(stack: Stack, job_id: str) -> dict[str, object]:
    raw = stack.redis.get(f"fpg:job:{job_id}")
    return dict(json.loads(raw)) if raw else {}


def test_a_job_that_kills_its_worker_three_times_is_failed_not_run_again(own_redis):
    with running_stack(own_redis, worker_processes=1) as stack, stack.client() as client:
        job_id = client.post(
            "/v1/images",
            files={"file": ("poison.jpg", _large_noisy_jpeg())},
            data={"denoise": "true"},
        ).json()["id"]
        for attempt in (1, 2, 3):
            deadline = time.monotonic() + 60
            while not (
                _job_record(stack, job_id).get("attempts") == attempt
                and _job_record(stack, job_id).get("status") == "running"
            ):
                assert time.monotonic() < deadline, f"attempt {attempt} never started"
                time.sleep(0.01)
            for child in _children(stack.worker.pid):
                os.kill(child, signal.SIGKILL)

        job = wait_for_job(client, job_id, timeout=60)
        assert job["status"] == "failed"
        assert "worker process died 3 times" in str(job["error"])
        assert client.get(f"/v1/jobs/{job_id}/result").json()["code"] == "job_failed"
        assert not list(stack.blob_dir.glob(f"*/{job_id}:input"))  # the original is gone too
        records = client.get("/v1/audit", params={"job_id": job_id}).json()["records"]
        (image,) = [record for record in records if record["event"] == "image"]
        assert (image["outcome"], image["reason"]) == ("failed", job["error"])
        time.sleep(2)  # and it is not delivered again
        assert _job_record(stack, job_id)["attempts"] == 4
        assert stack.redis.llen("celery") == 0


def _status_when(
    client: httpx.Client, wanted: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """The first /v1/status answer that is ``wanted``, or the last one after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/v1/status")
        assert answer.status_code == 200, answer.text
        status = dict(answer.json())
        if wanted(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_a_frozen_worker_shows_as_not_alive_once_its_heartbeat_expires(own_redis):
    ttl = 2
    with (
        running_stack(
            own_redis, worker_processes=1, FPG_WORKER_HEARTBEAT_TTL_SECONDS=str(ttl)
        ) as stack,
        stack.client() as client,
    ):
        alive = _status_when(client, lambda status: status["workers_alive"] == 1, timeout=60)
        assert alive["workers_alive"] == 1
        assert 0 <= alive["oldest_heartbeat_age_seconds"] < ttl
        assert alive["queue_depth"] == 0
        assert "fpg_workers_alive 1.0" in client.get("/metrics").text

        stack.worker.send_signal(signal.SIGSTOP)  # frozen: consumes nothing, answers nothing
        try:
            frozen_at = time.monotonic()
            frozen = _status_when(client, lambda status: status["workers_alive"] == 0, ttl + 5)
            noticed_after = time.monotonic() - frozen_at
            assert frozen == {
                "workers_alive": 0,
                "queue_depth": 0,
                "video_queue_depth": 0,
                "oldest_heartbeat_age_seconds": None,
                "newest_heartbeat_age_seconds": None,
            }
            assert noticed_after <= ttl + 1
            metrics = client.get("/metrics").text
            assert "fpg_workers_alive 0.0" in metrics
            assert "fpg_worker_heartbeat_age_seconds" not in metrics
            assert client.get("/readyz").status_code == 200  # the gateway itself is still ready
        finally:
            stack.worker.send_signal(signal.SIGCONT)
        thawed = _status_when(client, lambda status: status["workers_alive"] == 1, ttl + 5)
        assert thawed["workers_alive"] == 1
