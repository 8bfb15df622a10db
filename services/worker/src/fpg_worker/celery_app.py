"""The worker's Celery app. Start it with ``celery -A fpg_worker.celery_app worker`` for images
(the ``celery`` queue), ``... worker -Q video`` for videos, or ``-Q celery,video`` for both.

The detectors are built in each child process after the fork (``worker_process_init``): built in
the parent before forking, the inference runtimes hang every child.
"""

from collections.abc import Callable
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import setup_logging, worker_process_init

from blurcore import Anonymizer
from fpg_audit import AuditStore
from fpg_worker.heartbeat import heartbeat_step
from fpg_worker.processing import JobRunner
from fpg_worker.settings import WorkerSettings
from fpg_worker.videos import NextTask, VideoBusyError, VideoRunner
from jobstore.blobs import open_blob_store
from jobstore.celery_wiring import (
    ANONYMIZE_TASK,
    VIDEO_DETECT_TASK,
    VIDEO_JOIN_TASK,
    VIDEO_LEASE_SECONDS,
    VIDEO_TASK,
    VIDEO_TRACK_TASK,
    VIDEO_WRITE_TASK,
    make_celery,
    video_time_limits,
)
from jobstore.heartbeats import Heartbeats
from jobstore.logs import configure_json_logging
from jobstore.metrics import MetricsStore
from jobstore.records import RecordStore
from jobstore.video_records import VideoRecordStore

settings = WorkerSettings()
app = make_celery(settings)
app.steps["worker"].add(
    heartbeat_step(
        Heartbeats(redis.Redis.from_url(settings.redis_url, socket_timeout=5), settings.key_prefix),
        settings.worker_heartbeat_ttl_seconds,
    )
)
_runner: JobRunner | None = None
_video_runner: VideoRunner | None = None


@setup_logging.connect
def _json_logs(**_kwargs: Any) -> None:
    configure_json_logging()


def build_runner(worker_settings: WorkerSettings) -> JobRunner:
    client = redis.Redis.from_url(worker_settings.redis_url)
    anonymizer = Anonymizer(
        threads=worker_settings.inference_threads, max_pixels=worker_settings.max_pixels
    )
    anonymizer.load()
    return JobRunner(
        records=RecordStore(client, worker_settings.key_prefix, worker_settings.retention_seconds),
        blobs=open_blob_store(worker_settings.blob_url, client, worker_settings.key_prefix),
        metrics=MetricsStore(client, worker_settings.key_prefix),
        anonymizer=anonymizer,
        time_limit_errors=(SoftTimeLimitExceeded,),
        audit=AuditStore.from_settings(worker_settings),
        max_attempts=worker_settings.max_job_attempts,
    )


def build_video_runner(worker_settings: WorkerSettings, runner: JobRunner) -> VideoRunner:
    """Videos share the image runner's models, blob store, audit trail and records (the holds
    on batches' ZIPs)."""
    client = redis.Redis.from_url(worker_settings.redis_url)
    return VideoRunner(
        videos=VideoRecordStore(
            client, worker_settings.key_prefix, worker_settings.retention_seconds
        ),
        blobs=runner.blobs,
        anonymizer=runner.anonymizer,
        segment_seconds=worker_settings.video_segment_seconds,
        scratch_dir=worker_settings.worker_scratch_dir,
        time_limit_errors=(SoftTimeLimitExceeded,),
        audit=runner.audit,
        max_attempts=worker_settings.max_job_attempts,
        records=runner.records,
        max_video_seconds=worker_settings.max_video_seconds,
    )


@worker_process_init.connect
def _load_models_in_child(**_kwargs: Any) -> None:
    global _runner, _video_runner
    _runner = build_runner(settings)
    _video_runner = build_video_runner(settings, _runner)


@app.task(name=ANONYMIZE_TASK)
def anonymize_image(job_id: str) -> None:
    """The job's outcome goes to the jobstore; image bytes never travel through Celery."""
    global _runner
    if _runner is None:  # a solo or threaded pool has no worker_process_init
        _runner = build_runner(settings)
    _runner.run(job_id)


def _run_video_step(task: Task, step: Callable[[VideoRunner], list[NextTask]]) -> None:
    """Run one step of a video and send the steps it hands on, each with time limits for the
    stretch of video it covers. A second delivery while another worker runs the same step
    (Redis's visibility timeout is shorter than a long segment) comes back later instead of
    running it twice."""
    global _runner, _video_runner
    if _video_runner is None:  # a solo or threaded pool has no worker_process_init
        _runner = _runner or build_runner(settings)
        _video_runner = build_video_runner(settings, _runner)
    try:
        next_tasks = step(_video_runner)
    except VideoBusyError as busy:
        raise task.retry(countdown=VIDEO_LEASE_SECONDS, exc=busy) from busy
    for next_task in next_tasks:
        soft_limit, hard_limit = video_time_limits(next_task.video_seconds)
        app.send_task(
            next_task.name,
            args=list(next_task.args),
            soft_time_limit=soft_limit,
            time_limit=hard_limit,
        )


@app.task(name=VIDEO_TASK, bind=True, max_retries=None)
def plan_video(self: Task, video_id: str) -> None:
    _run_video_step(self, lambda runner: runner.plan(video_id))


@app.task(name=VIDEO_DETECT_TASK, bind=True, max_retries=None)
def detect_video_segment(self: Task, video_id: str, segment: int) -> None:
    _run_video_step(self, lambda runner: runner.detect(video_id, segment))


@app.task(name=VIDEO_TRACK_TASK, bind=True, max_retries=None)
def track_video(self: Task, video_id: str) -> None:
    _run_video_step(self, lambda runner: runner.track(video_id))


@app.task(name=VIDEO_WRITE_TASK, bind=True, max_retries=None)
def write_video_segment(self: Task, video_id: str, segment: int) -> None:
    _run_video_step(self, lambda runner: runner.write(video_id, segment))


@app.task(name=VIDEO_JOIN_TASK, bind=True, max_retries=None)
def join_video(self: Task, video_id: str) -> None:
    _run_video_step(self, lambda runner: runner.join(video_id))
