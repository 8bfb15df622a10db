"""The worker's Celery app. Start it with ``celery -A fpg_worker.celery_app worker`` for images
(the ``celery`` queue), ``... worker -Q video`` for videos, or ``-Q celery,video`` for both.

The detectors are built in each child process after the fork (``worker_process_init``): built in
the parent before forking, the inference runtimes hang every child.
"""

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
from fpg_worker.videos import VideoBusyError, VideoRunner
from jobstore.blobs import open_blob_store
from jobstore.celery_wiring import ANONYMIZE_TASK, VIDEO_LEASE_SECONDS, VIDEO_TASK, make_celery
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
    """Videos share the image runner's models, blob store and audit trail."""
    client = redis.Redis.from_url(worker_settings.redis_url)
    return VideoRunner(
        videos=VideoRecordStore(
            client, worker_settings.key_prefix, worker_settings.retention_seconds
        ),
        blobs=runner.blobs,
        anonymizer=runner.anonymizer,
        scratch_dir=worker_settings.worker_scratch_dir,
        time_limit_errors=(SoftTimeLimitExceeded,),
        audit=runner.audit,
        max_attempts=worker_settings.max_job_attempts,
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


@app.task(name=VIDEO_TASK, bind=True, max_retries=None)
def anonymize_video(self: Task, video_id: str) -> None:
    """Sent with time limits scaled to the video (``celery_wiring.video_time_limits``). A second
    delivery while another worker runs it (Redis's visibility timeout is shorter than a long
    video) comes back later instead of running it twice."""
    global _runner, _video_runner
    if _video_runner is None:  # a solo or threaded pool has no worker_process_init
        _runner = _runner or build_runner(settings)
        _video_runner = build_video_runner(settings, _runner)
    try:
        _video_runner.run(video_id)
    except VideoBusyError as busy:
        raise self.retry(countdown=VIDEO_LEASE_SECONDS, exc=busy) from busy
