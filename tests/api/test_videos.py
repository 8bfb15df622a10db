"""Videos through the real stack (a private Redis, a Celery worker consuming `celery,video`, the
gateway, API keys on): a clip's progress rising to 100%, its result served with Range, its
report, DELETE while it runs, a corrupt video failing, refusals, ownership and the audit trail."""

import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest
from celery import Celery

from blurcore import AnonymizeParams
from blurcore.video.containers import AVI, MATROSKA, MP4, QUICKTIME, WEBM, container_kind
from fpg_api.main import create_app, record_expiries
from fpg_api.settings import GatewaySettings, upload_memory
from fpg_audit import AuditEvent, AuditStore, Role
from jobstore.blobs import result_key
from jobstore.celery_wiring import (
    ANONYMIZE_TASK,
    VIDEO_TASK,
    make_celery,
    video_time_limits,
)
from jobstore.records import JobStatus
from jobstore.settings import StoreSettings
from jobstore.video_records import VideoRecord, VideoRecordStore

from ..blurcore.video.clips import ClipSpec, make_clip
from ..conftest import Stack, private_redis, running_stack

MAX_VIDEO_SECONDS = 3
MAX_VIDEO_BYTES = 2 * 1024 * 1024
# Cut into segments of 0.4 s, a keyframe every 10 frames: the clip in 4, shared by 2 processes.
SEGMENT_SECONDS = 0.4
CLIP = ClipSpec(frames=40, rate=25, keyframe_every=10)  # 1.6 s
# Long enough to be deleted while it runs: 2.8 s at a larger size (about 4 s of work here).
LONG_CLIP = ClipSpec(frames=70, rate=25, size=(960, 540), keyframe_every=10)


@dataclass
class Videos:
    stack: Stack
    audit: AuditStore
    owner: str
    owner_id: str
    stranger: str
    scratch: Path

    def as_(self, secret: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"}
        return httpx.Client(base_url=self.stack.url, timeout=60, headers=headers)

    def stored(self, video_id: str) -> list[str]:
        return sorted(path.name for path in self.stack.blob_dir.glob(f"*/{video_id}:*"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Videos]:
    database = f"sqlite:///{tmp_path_factory.mktemp('audit')}/audit.db"
    scratch = tmp_path_factory.mktemp("scratch")
    audit = AuditStore.connect(database)
    owner_key, owner = audit.create_key("lessons", Role.SUBMITTER)
    _stranger_key, stranger = audit.create_key("school", Role.SUBMITTER)
    with (
        private_redis() as redis_url,
        running_stack(
            redis_url,
            FPG_REQUIRE_API_KEYS="true",
            FPG_AUDIT_DATABASE_URL=database,
            FPG_MAX_VIDEO_SECONDS=str(MAX_VIDEO_SECONDS),
            FPG_MAX_VIDEO_BYTES=str(MAX_VIDEO_BYTES),
            FPG_WORKER_SCRATCH_DIR=str(scratch),
            FPG_VIDEO_SEGMENT_SECONDS=str(SEGMENT_SECONDS),
        ) as stack,
    ):
        yield Videos(stack, audit, owner, owner_key.id, stranger, scratch)
    audit.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clips") / "lesson.mp4"
    make_clip(path, CLIP)
    return path.read_bytes()


@pytest.fixture
def owner(videos: Videos) -> Iterator[httpx.Client]:
    with videos.as_(videos.owner) as client:
        yield client


def _clip_bytes(tmp_path: Path, name: str, spec: ClipSpec) -> bytes:
    path = tmp_path / name
    make_clip(path, spec)
    return path.read_bytes()


def _post(client: httpx.Client, name: str, data: bytes, **fields: str) -> httpx.Response:
    return client.post("/v1/videos", files={"file": (name, data)}, data=fields)


def _follow(client: httpx.Client, video_id: str, timeout: float = 90) -> list[dict[str, object]]:
    """Every status answer until the video finishes."""
    seen: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(client.get(f"/v1/videos/{video_id}").json())
        if seen[-1]["status"] in ("done", "failed"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"video {video_id} did not finish in {timeout} s: {seen[-1]}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def done(videos: Videos, clip: bytes) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The clip, uploaded once and followed to its end: the 202's body and every status seen."""
    with videos.as_(videos.owner) as client:
        answer = _post(client, "lesson.mp4", clip, mode="fill", audio="mute")
        assert answer.status_code == 202, answer.text
        accepted = answer.json()
        assert answer.headers["Location"] == accepted["status_url"]
        too_early = client.get(accepted["report_url"])
        return accepted, [too_early.json(), *_follow(client, accepted["id"])]


def test_a_clip_runs_with_progress_rising_to_100_percent(done):
    _accepted, (too_early, *seen) = done
    assert too_early["code"] == "not_ready"
    percents = [status["percent"] for status in seen]
    assert percents == sorted(percents), "progress went down"
    running = [status for status in seen if status["status"] == "running"]
    assert any(0 < status["percent"] < 100 for status in running), "no progress seen"
    assert all(status["frames_per_second"] is not None for status in running if status["stage"])
    final = seen[-1]
    assert final["status"] == "done", final
    assert (final["percent"], final["frames_done"], final["frames_total"]) == (100.0, 40, 40)
    assert final["seconds_left"] == 0.0
    assert final["faces"] >= 40
    assert final["tracks"] >= 1
    assert final["filename"] == "lesson.mp4"
    assert final["result_expires_at"] > final["finished_at"] >= final["started_at"]


def test_the_clip_was_shared_out_in_segments(videos, done):
    accepted, _seen = done
    record = VideoRecordStore(videos.stack.redis, "fpg", 600).get(accepted["id"])
    assert record is not None
    assert (record.segments, record.frames_total) == (4, 40)


def test_the_result_streams_whole_or_by_range(videos, owner, done):
    accepted, _seen = done
    whole = owner.get(accepted["result_url"])
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert int(whole.headers["content-length"]) == len(whole.content)
    assert whole.headers["accept-ranges"] == "bytes"
    assert 'filename="lesson-anonymized.mp4"' in whole.headers["content-disposition"]
    with av.open(io.BytesIO(whole.content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 40
        assert not container.streams.audio  # audio=mute
    part = owner.get(accepted["result_url"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == whole.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
    tail = owner.get(accepted["result_url"], headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, whole.content[-10:])
    beyond = owner.get(accepted["result_url"], headers={"Range": f"bytes={len(whole.content)}-"})
    assert (beyond.status_code, beyond.json()["code"]) == (416, "range_not_satisfiable")
    # The original went once the result was stored.
    assert videos.stored(accepted["id"]) == [f"{accepted['id']}:report", f"{accepted['id']}:result"]


def test_the_report_has_tracks_faces_per_frame_hashes_and_parameters(owner, clip, done):
    accepted, _seen = done
    report = owner.get(accepted["report_url"]).json()
    result = owner.get(accepted["result_url"]).content
    assert report["id"] == accepted["id"]
    assert report["frames"] == len(report["faces_per_frame"]) == 40
    assert all(count >= 1 for count in report["faces_per_frame"])
    track = report["tracks"][0]
    assert 0 <= track["first_time"] < track["last_time"] <= 1.6
    assert report["input_sha256"] == _sha256(clip)
    assert report["output_sha256"] == _sha256(result)
    assert (report["params"]["mode"], report["audio"]) == ("fill", "mute")


def test_the_audit_trail_has_one_record_for_the_video(videos, owner, clip, done):
    accepted, seen = done
    records = [r for r in videos.audit.records() if r.job_id == accepted["id"]]
    assert [r.event for r in records] == ["video", "original_deleted"]
    video = records[0]
    final = seen[-1]
    assert (video.outcome, video.path, video.frames) == ("done", "lesson.mp4", 40)
    assert (video.faces, video.tracks) == (final["faces"], final["tracks"])
    assert video.input_sha256 == _sha256(clip)
    assert video.output_sha256 == _sha256(owner.get(accepted["result_url"]).content)
    assert video.params is not None
    assert (video.params["mode"], video.params["audio"]) == ("fill", "mute")
    assert video.key_id == videos.owner_id
    assert video.client == "127.0.0.1"
    assert video.result_expires_at is not None
    assert video.detectors


def test_another_keys_video_is_not_found(videos, done):
    accepted, _seen = done
    with videos.as_(videos.stranger) as stranger:
        for url in (accepted["status_url"], accepted["result_url"], accepted["report_url"]):
            assert stranger.get(url).status_code == 404
        assert stranger.delete(accepted["status_url"]).status_code == 404


def test_delete_while_it_runs_stops_the_worker_and_keeps_nothing(videos, owner, tmp_path):
    answer = _post(owner, "long.mp4", _clip_bytes(tmp_path, "long.mp4", LONG_CLIP))
    video_id = answer.json()["id"]
    deadline = time.monotonic() + 60
    while owner.get(f"/v1/videos/{video_id}").json()["stage"] != "write":
        assert time.monotonic() < deadline, "the video never reached its second pass"
        time.sleep(0.05)
    assert list(videos.scratch.iterdir()), "the worker writes its part to the scratch dir"

    assert owner.delete(f"/v1/videos/{video_id}").status_code == 204

    assert owner.get(f"/v1/videos/{video_id}").status_code == 404
    deadline = time.monotonic() + 3
    while list(videos.scratch.iterdir()):  # the worker stopped and removed its partial output
        assert time.monotonic() < deadline, "the worker did not stop within 3 s"
        time.sleep(0.05)
    time.sleep(1)  # what a worker that had not stopped would store meanwhile
    assert videos.stored(video_id) == []
    assert not videos.stack.redis.keys(f"*{video_id}*")
    events = [r.event for r in videos.audit.records() if r.job_id == video_id]
    assert events == ["job_deleted", "keys_destroyed"]


def test_a_corrupt_video_fails_with_its_reason_and_no_output(videos, owner, tmp_path):
    # Matroska, its header first: damage half way in is met while decoding.
    # One keyframe: the damage spoils the rest of the clip's decoding.
    damaged = bytearray(_clip_bytes(tmp_path, "damaged.mkv", ClipSpec(frames=40, rate=25)))
    cut = len(damaged) // 2
    damaged[cut : cut + 2000] = bytes(range(256)) * 7 + bytes(208)
    answer = _post(owner, "damaged.mkv", bytes(damaged))
    assert answer.status_code == 202, answer.text
    video_id = answer.json()["id"]
    seen = _follow(owner, video_id)
    final = seen[-1]
    assert final["status"] == "failed"
    percents = [status["percent"] for status in seen]
    assert percents == sorted(percents), "a failed video's progress went back"
    assert "truncated" in final["error"] or "decode" in final["error"]
    for url in (answer.json()["result_url"], answer.json()["report_url"]):
        failed = owner.get(url)
        assert (failed.status_code, failed.json()["code"]) == (409, "video_failed")
    assert videos.stored(video_id) == []
    (record,) = [r for r in videos.audit.records() if r.job_id == video_id and r.event == "video"]
    assert (record.outcome, record.reason) == ("failed", final["error"])
    assert record.output_sha256 is None


def test_a_failed_video_keeps_the_progress_it_had_made(videos, owner):
    """Its percent never goes back to 0; what was running (stage, time left) is gone."""
    store = VideoRecordStore(videos.stack.redis, "fpg", 600)
    failed = VideoRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.FAILED,
        error="the video changed while it was read",
        params=AnonymizeParams(),
        filename="x.mp4",
        suffix=".mp4",
        content_type="video/mp4",
        declared_frames=25,
        key_id=videos.owner_id,
    )
    running = failed.model_copy(update={"status": JobStatus.RUNNING})
    store.create(running, 600)
    assert store.report(failed.id, "detect-0", "a worker", 60, ("detect", 0, 25))
    assert store.report(failed.id, "write-0", "a worker", 60, ("write", 0, 7))
    store.finish(failed)

    view = owner.get(f"/v1/videos/{failed.id}").json()

    # 0.72 for the first pass done, 0.28 * 7 / 25 of the second
    assert (view["status"], view["percent"], view["frames_done"]) == ("failed", 79.8, 20)
    assert (view["stage"], view["seconds_left"]) == (None, None)


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("photo.mp4", b"\xff\xd8\xff\xe0" + bytes(2000), 415, "unsupported_media_type"),
        ("broken.mp4", b"\x00\x00\x00\x20ftypisom" + bytes(2000), 422, "unreadable_video"),
        ("empty.mp4", b"", 400, "empty_file"),
        ("huge.mp4", bytes(MAX_VIDEO_BYTES + 100_000), 413, "video_too_large"),
    ],
)
def test_what_is_no_video_or_too_large_is_refused_and_deleted(
    videos, owner, name, data, status, code
):
    before = sorted(videos.stack.blob_dir.glob("*/*"))
    answer = _post(owner, name, data)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert sorted(videos.stack.blob_dir.glob("*/*")) == before


def test_a_video_longer_than_the_limit_is_refused_from_its_header(videos, owner, tmp_path):
    before = sorted(videos.stack.blob_dir.glob("*/*"))
    long = _clip_bytes(tmp_path, "long.mp4", ClipSpec(frames=4 * 25, size=(64, 64)))
    answer = _post(owner, "long.mp4", long)
    assert (answer.status_code, answer.json()["code"]) == (413, "video_too_long"), answer.text
    assert f"limit is {MAX_VIDEO_SECONDS} s" in answer.json()["message"]
    assert sorted(videos.stack.blob_dir.glob("*/*")) == before


def test_frames_over_8k_are_refused_from_the_header(videos, owner, tmp_path):
    """One black frame of 7696x4336, H.264 in Matroska (99 KB): the limit is 7680x4320."""
    path = tmp_path / "huge.mkv"
    with av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 7696, 4336, "yuv420p"
        frame = av.VideoFrame(7696, 4336, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    before = sorted(videos.stack.blob_dir.glob("*/*"))
    answer = _post(owner, "huge.mkv", path.read_bytes())
    assert (answer.status_code, answer.json()["code"]) == (413, "video_too_large"), answer.text
    assert "7696x4336" in answer.json()["message"]
    assert sorted(videos.stack.blob_dir.glob("*/*")) == before


def test_parameters_are_checked_as_for_images(owner, clip):
    weak = _post(owner, "lesson.mp4", clip, centerface_confidence="0.99")
    assert (weak.status_code, weak.json()["code"]) == (422, "below_policy")
    invalid = _post(owner, "lesson.mp4", clip, audio="louder")
    assert (invalid.status_code, invalid.json()["code"]) == (422, "validation_error")
    assert invalid.json()["details"][0]["field"] == "audio"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x00\x00\x00\x20ftypisom", MP4),
        (b"\x00\x00\x00\x14ftypqt  ", QUICKTIME),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", WEBM),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", MATROSKA),
        (b"RIFF\x00\x10\x00\x00AVI LIST", AVI),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"ID3\x04\x00", None),
    ],
)
def test_the_container_kind_is_read_from_the_first_bytes(head, kind):
    assert container_kind(head) == kind


def _queue_of(app: Celery, task: str) -> str:
    return str(app.amqp.router.route({}, task)["queue"].name)


def test_videos_have_their_own_queue_and_time_limits_that_grow_with_their_length():
    app = make_celery(StoreSettings())
    assert (_queue_of(app, VIDEO_TASK), _queue_of(app, ANONYMIZE_TASK)) == ("video", "celery")
    short, hour = video_time_limits(2.0), video_time_limits(3600.0)
    assert short[0] < short[1] < hour[0] < hour[1]
    assert hour[0] > 10 * 3600  # ten times real time and more before a video is stopped


def test_a_video_upload_reserves_a_chunk_of_the_gateways_memory():
    assert upload_memory("/v1/videos", 4 * 1024**3, 50 * 1024**2) == 2 * 1024**2


def test_an_expired_video_result_is_audited_like_an_images(redis_url, tmp_path):
    settings = GatewaySettings(
        redis_url=redis_url,
        audit_database_url=f"sqlite:///{tmp_path}/audit.db",
        key_prefix=f"video-sweep-{time.monotonic_ns()}",
        blob_url=f"file:{tmp_path}/blobs",
    )
    services = create_app(settings).state.services
    video_id, kept_id = "a" * 32, "b" * 32
    services.blobs.put(result_key(kept_id), b"anonymized video", 60)
    past = "2000-01-01T00:00:00.000000Z"
    services.audit.append(
        *(
            AuditEvent(event="video", job_id=job, outcome="done", frames=40, result_expires_at=past)
            for job in (video_id, kept_id)
        )
    )

    assert record_expiries(services) == 1
    assert [(r.event, r.job_id) for r in services.audit.records()][-1] == (
        "result_expired",
        video_id,
    )
