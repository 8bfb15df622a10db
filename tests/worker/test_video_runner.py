"""The worker's video logic against a real Redis, a real blob directory and the real models,
without Celery in between: a clip in several segments, a second delivery of a running step, a
step that killed its workers, a step that finds its video failed, and progress that never goes
down or outlives its record."""

import signal
import time
from pathlib import Path

import av
import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded

from blurcore import AnonymizeParams
from blurcore.video.pipeline import VideoAnonymizer
from fpg_worker.videos import VideoBusyError, VideoRunner
from jobstore.blobs import input_key, open_blob_store, result_key
from jobstore.blobs.base import detections_key, video_work_keys
from jobstore.celery_wiring import VIDEO_JOIN_TASK, VIDEO_LEASE_SECONDS, VIDEO_TRACK_TASK
from jobstore.records import JobStatus
from jobstore.video_records import VideoRecord, VideoRecordStore

from ..blurcore.video.clips import ClipSpec, make_clip


@pytest.fixture
def runner(redis_url, anonymizer, tmp_path) -> VideoRunner:
    client = redis.Redis.from_url(redis_url)
    prefix = f"video-runner-{time.monotonic_ns()}"
    return VideoRunner(
        videos=VideoRecordStore(client, prefix, 300),
        blobs=open_blob_store(f"file:{tmp_path}/blobs", client, prefix),
        anonymizer=anonymizer,
        scratch_dir=tmp_path,
        time_limit_errors=(SoftTimeLimitExceeded,),
        max_attempts=2,
    )


SHORT_CLIP = ClipSpec(frames=8, size=(160, 90))


def _queued(runner: VideoRunner, tmp_path: Path, spec: ClipSpec = SHORT_CLIP) -> VideoRecord:
    clip = tmp_path / "clip.mp4"
    make_clip(clip, spec)
    video = VideoRecord(
        id=f"{time.monotonic_ns():032x}",
        params=AnonymizeParams(profile="fast"),
        filename="clip.mp4",
        suffix=".mp4",
        content_type="video/mp4",
        declared_frames=spec.frames,
    )
    runner.blobs.put(input_key(video.id), clip.read_bytes(), 300)
    runner.videos.create(video, 300)
    return video


def _frame_times(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(video=0)]


def _stored_work(runner: VideoRunner, video_id: str, segments: int) -> list[str]:
    keys = [input_key(video_id), *video_work_keys(video_id, segments)]
    return [key for key in keys if runner.blobs.exists(key)]


def test_a_clip_in_segments_comes_out_as_the_library_writes_it_in_one(runner, tmp_path):
    spec = ClipSpec(frames=30, size=(320, 180), keyframe_every=10, bframes=2)
    video = _queued(runner, tmp_path, spec)
    runner.segment_seconds = 0.4  # a keyframe every 0.4 s: three segments

    done = runner.run(video.id)

    assert done is not None
    assert (done.status, done.segments, done.frames) == (JobStatus.DONE, 3, 30)
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(runner.blobs.get(result_key(video.id)) or b"")
    alone = tmp_path / "alone.mp4"
    VideoAnonymizer(runner.anonymizer).process(tmp_path / "clip.mp4", alone, video.params)
    assert _frame_times(joined) == _frame_times(alone)
    assert _stored_work(runner, video.id, 3) == []  # the original and every step's output went
    assert list(tmp_path.glob("fpg-video-*")) == []  # and the scratch files


def test_only_the_last_segment_through_a_pass_sends_the_next_step(runner, tmp_path):
    spec = ClipSpec(frames=30, size=(160, 90), keyframe_every=10)
    video = _queued(runner, tmp_path, spec)
    runner.segment_seconds = 0.4
    detect_tasks = runner.plan(video.id)
    assert [task.args for task in detect_tasks] == [(video.id, 0), (video.id, 1), (video.id, 2)]

    sent = [runner.detect(video.id, segment) for segment in (2, 0, 1)]

    assert [[task.name for task in tasks] for tasks in sent] == [[], [], [VIDEO_TRACK_TASK]]
    assert runner.detect(video.id, 0)[0].name == VIDEO_TRACK_TASK  # a redelivery: sent again
    write_tasks = runner.track(video.id)
    last_writes = [runner.write(*task.args) for task in write_tasks]  # type: ignore[arg-type]
    assert [[task.name for task in tasks] for tasks in last_writes] == [[], [], [VIDEO_JOIN_TASK]]


def test_a_step_of_a_video_failed_meanwhile_stores_nothing(runner, tmp_path):
    spec = ClipSpec(frames=20, size=(160, 90), keyframe_every=10)
    video = _queued(runner, tmp_path, spec)
    runner.segment_seconds = 0.4
    runner.plan(video.id)
    failed = runner.videos.get(video.id)
    assert failed is not None
    failed.status, failed.error = JobStatus.FAILED, "segment 0 could not be decoded"
    runner.videos.finish(failed)

    assert runner.detect(video.id, 1) == []

    assert not runner.blobs.exists(detections_key(video.id, 1))


def test_a_second_delivery_while_another_worker_runs_it_is_busy(runner, tmp_path):
    video = _queued(runner, tmp_path)
    assert runner.videos.hold_lease(video.id, "plan", "another worker", VIDEO_LEASE_SECONDS)

    with pytest.raises(VideoBusyError):
        runner.plan(video.id)

    assert runner.videos.get(video.id) == video  # untouched, no attempt counted
    assert runner.videos.count_attempt(video.id, "plan") == 1


def test_a_video_that_outlived_its_lease_is_taken_over_and_done(runner, tmp_path):
    video = _queued(runner, tmp_path)
    assert runner.videos.hold_lease(video.id, "plan", "a worker that died", 0.05)
    time.sleep(0.1)

    done = runner.run(video.id)

    assert done is not None
    assert (done.status, done.frames) == (JobStatus.DONE, 8)
    assert runner.blobs.exists(result_key(video.id))
    assert not runner.blobs.exists(input_key(video.id))
    assert list(tmp_path.glob("fpg-video-*")) == []  # the scratch output went once stored


def test_a_video_that_killed_its_workers_fails_without_running_again(runner, tmp_path):
    video = _queued(runner, tmp_path)
    for _ in range(runner.max_attempts):  # starts that never finished
        runner.videos.count_attempt(video.id, "plan")

    failed = runner.run(video.id)

    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert "died 2 times" in (failed.error or "")
    assert not runner.blobs.exists(input_key(video.id))


def test_a_video_past_its_time_limit_fails_and_keeps_nothing(runner, tmp_path):
    """Celery raises SoftTimeLimitExceeded from a signal handler, wherever the work is."""
    video = _queued(runner, tmp_path, ClipSpec(frames=120, size=(480, 270)))

    def soft_time_limit(_signal: int, _frame: object) -> None:
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, soft_time_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        failed = runner.run(video.id)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    assert failed is not None
    assert (failed.status, failed.error) == (
        JobStatus.FAILED,
        "processing took longer than the time limit",
    )
    assert runner.videos.get(video.id) == failed
    assert not runner.blobs.exists(input_key(video.id))
    assert not runner.blobs.exists(result_key(video.id))
    assert list(tmp_path.glob("fpg-video-*")) == []


def test_progress_never_goes_down_and_stops_with_its_record(runner, tmp_path):
    video = _queued(runner, tmp_path)
    store = runner.videos
    assert store.report(video.id, "detect-0", "worker", VIDEO_LEASE_SECONDS, ("detect", 0, 4))
    assert store.report(video.id, "detect-0", "worker", VIDEO_LEASE_SECONDS, ("detect", 0, 2))
    seen = store.progress(video)
    assert seen is not None
    assert (seen.stage, seen.frames_total, seen.percent) == ("detect", 8, 36.0)  # 0.72 * 4 / 8
    assert not store.report(
        video.id, "detect-0", "another worker", VIDEO_LEASE_SECONDS, ("detect", 0, 8)
    )
    assert store.report(video.id, "write-0", "worker", VIDEO_LEASE_SECONDS, ("write", 0, 8))
    assert store.progress(video).stage == "store"  # type: ignore[union-attr]

    store.delete(video)

    assert not store.report(video.id, "write-0", "worker", VIDEO_LEASE_SECONDS, ("write", 0, 8))
    assert store.progress(video) is None
    assert not store.hold_lease(video.id, "write-0", "worker", VIDEO_LEASE_SECONDS)
