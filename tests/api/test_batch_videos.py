"""Videos in ZIP batches through the real stack (a private Redis, a Celery worker consuming
`celery,video`, the gateway): a ZIP with a photo and a video has both anonymized, side by side
in the result ZIP and report.json; a video entry that cannot be read, or lasts too long, fails
alone with the reason; DELETE of a batch stops its running video; the stored ZIP goes once the
last image is done and the last video copied out, and the audit trail says when each copy went."""

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest

from fpg_audit import AuditStore
from jobstore.records import RecordStore

from ..blurcore.video.clips import ClipSpec, make_clip
from ..conftest import (
    RETENTION_SECONDS,
    Stack,
    archive_gone,
    private_redis,
    running_stack,
    wait_for_batch,
    zip_of,
)

MAX_VIDEO_SECONDS = 3
MAX_BATCH_VIDEOS = 3
MAX_VIDEO_BYTES = 4 * 1024 * 1024
CLIP = ClipSpec(frames=20, size=(320, 180), keyframe_every=10)  # 0.8 s, two segments of 0.4 s
# Long enough to be deleted while it runs: 2.8 s at a larger size (about 4 s of work here).
LONG_CLIP = ClipSpec(frames=70, rate=25, size=(960, 540), keyframe_every=10)


@dataclass
class Batches:
    stack: Stack
    audit: AuditStore
    scratch: Path

    def client(self) -> httpx.Client:
        return self.stack.client()

    def stored(self, *ids: str) -> list[str]:
        return sorted(p.name for i in ids for p in self.stack.blob_dir.glob(f"*/{i}:*"))


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batches]:
    database = f"sqlite:///{tmp_path_factory.mktemp('audit')}/audit.db"
    scratch = tmp_path_factory.mktemp("scratch")
    audit = AuditStore.connect(database)
    with (
        private_redis() as redis_url,
        running_stack(
            redis_url,
            FPG_AUDIT_DATABASE_URL=database,
            FPG_MAX_VIDEO_SECONDS=str(MAX_VIDEO_SECONDS),
            FPG_MAX_BATCH_VIDEOS=str(MAX_BATCH_VIDEOS),
            FPG_MAX_VIDEO_BYTES=str(MAX_VIDEO_BYTES),
            FPG_WORKER_SCRATCH_DIR=str(scratch),
            FPG_VIDEO_SEGMENT_SECONDS="0.4",
        ) as stack,
    ):
        yield Batches(stack, audit, scratch)
    audit.close()


def _clip(tmp_path: Path, name: str, spec: ClipSpec) -> bytes:
    path = tmp_path / name
    make_clip(path, spec)
    return path.read_bytes()


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within ``seconds``, asked every 50 ms."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _video_ids(batches: Batches, batch_id: str) -> list[str]:
    batch = RecordStore(batches.stack.redis, "fpg", 60).get_batch(batch_id)
    assert batch is not None
    return batch.video_ids


def _result(client: httpx.Client, accepted: dict[str, str]) -> tuple[dict[str, bytes], dict]:
    """The result ZIP's files, and its report.json."""
    answer = client.get(accepted["result_url"])
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return files, json.loads(files.pop("report.json"))


@pytest.fixture(scope="module")
def photo_and_video(batches, astronaut_jpeg, tmp_path_factory):
    """The issue's test: a ZIP of a photo and a video (deflated, as ZIP tools make them),
    followed to its end."""
    clip = _clip(tmp_path_factory.mktemp("clips"), "lesson.mp4", CLIP)
    upload = zip_of(
        {"class/photo.jpg": astronaut_jpeg, "class/lesson.mp4": clip}, zipfile.ZIP_DEFLATED
    )
    with batches.client() as client:
        accepted = client.post("/v1/batches", files={"file": ("class.zip", upload)}).json()
        progress = wait_for_batch(client, accepted["id"])
    return accepted, progress, clip


def test_a_zip_with_a_photo_and_a_video_has_both_done(batches, photo_and_video):
    accepted, progress, _clip_bytes = photo_and_video
    # Kept while its video may wait and run, beyond the retention: its result waits for it.
    assert batches.stack.redis.ttl(f"fpg:batch:{accepted['id']}") > RETENTION_SECONDS
    assert accepted["total"] == 2
    assert (progress["done"], progress["failed"], progress["pending"]) == (2, 0, 0), progress
    assert progress["faces"] >= 1 + 20  # the photo's face, and one in each of the 20 frames


def test_the_result_zip_holds_both_and_the_report_describes_both(
    batches, photo_and_video, astronaut_jpeg
):
    accepted, _progress, clip = photo_and_video
    with batches.client() as client:
        files, report = _result(client, accepted)
    assert sorted(files) == ["class/lesson.mp4", "class/photo.jpg"]
    photo, video = report["images"]
    assert (photo["path"], photo["status"], len(photo["boxes"][0])) == (
        "class/photo.jpg",
        "done",
        5,
    )
    assert photo["input_sha256"] == _sha256(astronaut_jpeg)
    assert (video["path"], video["status"], video["frames"]) == ("class/lesson.mp4", "done", 20)
    assert video["tracks"] >= 1
    assert video["faces"] >= 20
    assert video["input_sha256"] == _sha256(clip)
    assert video["output_sha256"] == _sha256(files["class/lesson.mp4"])
    assert video["job_id"] == _video_ids(batches, accepted["id"])[0]
    with av.open(io.BytesIO(files["class/lesson.mp4"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20
        assert container.streams.audio  # a batch's videos keep their sound
    assert report["summary"]["done"] == 2


def test_a_video_of_a_batch_is_a_video_like_any_other(batches, photo_and_video):
    """Its status, report and result at /v1/videos, its audit record naming the batch."""
    accepted, _progress, clip = photo_and_video
    (video_id,) = _video_ids(batches, accepted["id"])
    with batches.client() as client:
        view = client.get(f"/v1/videos/{video_id}").json()
        report = client.get(f"/v1/videos/{video_id}/report").json()
    assert (view["status"], view["filename"], view["frames_total"]) == (
        "done",
        "class/lesson.mp4",
        20,
    )
    assert (report["input_sha256"], report["audio"]) == (_sha256(clip), "keep")
    (record,) = [r for r in batches.audit.records() if r.job_id == video_id and r.event == "video"]
    assert (record.batch_id, record.outcome, record.frames) == (accepted["id"], "done", 20)


def test_the_zip_and_every_copy_are_gone_at_the_end_and_audited(batches, photo_and_video):
    accepted, _progress, _clip_bytes = photo_and_video
    batch_id = accepted["id"]
    (video_id,) = _video_ids(batches, batch_id)
    (photo_id,) = RecordStore(batches.stack.redis, "fpg", 60).get_batch(batch_id).job_ids
    assert archive_gone(batches.stack, batch_id)
    assert batches.stored(video_id) == [f"{video_id}:report", f"{video_id}:result"]
    assert list(batches.stack.blob_dir.glob("*/*:input")) == []
    assert not batches.stack.redis.exists(f"fpg:archive-hold:{batch_id}")
    deletions = [
        (r.job_id, r.reason)
        for r in batches.audit.records()
        if r.batch_id == batch_id and r.event in ("original_deleted", "keys_destroyed")
    ]
    # The video's copy when it was done, its entry with the ZIP, whichever went first.
    assert sorted(reason for job, reason in deletions if job == video_id) == [
        "its entry of the batch's ZIP deleted with the ZIP (a video works on a copy)",
        "processing finished",
    ]
    # The ZIP's entries, then its data key, once its last reader was done.
    zip_destroyed = deletions.index(
        (None, "1 data keys destroyed: every copy of the stored objects is unreadable")
    )
    assert [job for job, _reason in deletions[zip_destroyed - 2 : zip_destroyed]] == [
        photo_id,
        video_id,
    ]


def test_a_video_unreadable_too_long_or_too_large_fails_alone_with_the_reason(
    batches, astronaut_jpeg, tmp_path
):
    upload = zip_of(
        {
            "photo.jpg": astronaut_jpeg,
            "broken.mp4": b"\x00\x00\x00\x20ftypisom" + bytes(2000),
            "long.mkv": _clip(tmp_path, "long.mkv", ClipSpec(frames=4 * 25, size=(64, 64))),
            "big.mp4": bytes(MAX_VIDEO_BYTES + 1),
        }
    )
    with batches.client() as client:
        accepted = client.post("/v1/batches", files={"file": ("x.zip", upload)}).json()
        progress = wait_for_batch(client, accepted["id"])
        files, report = _result(client, accepted)
    assert (progress["done"], progress["failed"]) == (1, 3), progress
    assert sorted(files) == ["photo.jpg"]
    by_path = {line["path"]: line for line in report["images"]}
    assert by_path["photo.jpg"]["status"] == "done"
    assert by_path["broken.mp4"]["status"] == "failed"
    assert by_path["broken.mp4"]["error"].startswith("not a readable video")
    assert by_path["long.mkv"]["status"] == "failed"
    assert by_path["long.mkv"]["error"] == "the video lasts 4 s, over the limit of 3 s"
    assert (by_path["big.mp4"]["status"], by_path["big.mp4"]["error"]) == (
        "failed",
        "entry too large",
    )
    assert len(_video_ids(batches, accepted["id"])) == 2  # judged by its declared size: no video
    assert archive_gone(batches.stack, accepted["id"])
    assert batches.stored(*_video_ids(batches, accepted["id"])) == []


def test_delete_of_a_batch_stops_its_running_video_and_keeps_nothing(batches, tmp_path):
    upload = zip_of({"long.mp4": _clip(tmp_path, "long.mp4", LONG_CLIP)})
    with batches.client() as client:
        batch_id = client.post("/v1/batches", files={"file": ("x.zip", upload)}).json()["id"]
        (video_id,) = _video_ids(batches, batch_id)

        def in_second_pass() -> bool:
            return bool(client.get(f"/v1/videos/{video_id}").json()["stage"] == "write")

        assert _within(60, in_second_pass), "the video never reached its second pass"
        assert client.get(f"/v1/batches/{batch_id}").json()["pending"] == 1

        assert client.delete(f"/v1/batches/{batch_id}").status_code == 204

        assert client.get(f"/v1/videos/{video_id}").status_code == 404
        assert client.get(f"/v1/batches/{batch_id}").status_code == 404
    # The worker stopped and removed its partial output.
    assert _within(3, lambda: not list(batches.scratch.iterdir())), "the worker went on"
    time.sleep(1)  # what a worker that had not stopped would store meanwhile
    assert batches.stored(batch_id, video_id) == []
    assert not batches.stack.redis.keys(f"*{video_id}*")
    assert not batches.stack.redis.keys(f"*{batch_id}*")
    (deleted,) = [r for r in batches.audit.records() if r.event == "batch_deleted"]
    assert deleted.reason == (
        "deleted on request: 0 jobs' and 1 videos' originals, results and records purged"
    )


def test_a_zip_with_more_videos_than_the_limit_is_refused_whole(batches):
    upload = zip_of({f"{n}.mp4": b"not read" for n in range(MAX_BATCH_VIDEOS + 1)})
    before = sorted(batches.stack.blob_dir.glob("*/*"))
    with batches.client() as client:
        answer = client.post("/v1/batches", files={"file": ("x.zip", upload)})
    assert (answer.status_code, answer.json()["code"]) == (413, "too_many_videos")
    assert answer.json()["message"] == "the ZIP holds 4 videos; the limit is 3"
    assert sorted(batches.stack.blob_dir.glob("*/*")) == before
