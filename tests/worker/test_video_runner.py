"""The worker's video logic against a real Redis, a real blob directory and the real models,
without Celery in between: a second delivery of a running video, a video that killed its
workers, and progress that never goes down or outlives its record."""

import signal
import time
from pathlib import Path

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded

from blurcore import AnonymizeParams
from fpg_worker.videos import VideoBusyError, VideoRunner
from jobstore.blobs import input_key, open_blob_store, result_key
from jobstore.celery_wiring import VIDEO_LEASE_SECONDS
from jobstore.records import JobStatus
from jobstore.video_records import VideoProgress, VideoRecord, VideoRecordStore

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


def _progress(percent: float) -> VideoProgress:
    return VideoProgress(
        stage="detect",
        frames_done=0,
        frames_total=8,
        percent=percent,
        frames_per_second=1.0,
        seconds_left=None,
    )


def test_a_second_delivery_while_another_worker_runs_it_is_busy(runner, tmp_path):
    video = _queued(runner, tmp_path)
    assert runner.videos.hold_lease(video.id, "another worker", VIDEO_LEASE_SECONDS)

    with pytest.raises(VideoBusyError):
        runner.run(video.id)

    assert runner.videos.get(video.id) == video  # untouched, no attempt counted
    assert runner.videos.count_attempt(video.id) == 1


def test_a_video_that_outlived_its_lease_is_taken_over_and_done(runner, tmp_path):
    video = _queued(runner, tmp_path)
    assert runner.videos.hold_lease(video.id, "a worker that died", 0.05)
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
        runner.videos.count_attempt(video.id)

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
    assert store.report(video.id, "worker", VIDEO_LEASE_SECONDS, _progress(50.0))
    assert store.report(video.id, "worker", VIDEO_LEASE_SECONDS, _progress(20.0))
    assert store.progress(video.id) == _progress(50.0)
    assert not store.report(video.id, "another worker", VIDEO_LEASE_SECONDS, _progress(60.0))

    store.delete(video.id)

    assert not store.report(video.id, "worker", VIDEO_LEASE_SECONDS, _progress(70.0))
    assert store.progress(video.id) is None
    assert not store.hold_lease(video.id, "worker", VIDEO_LEASE_SECONDS)
