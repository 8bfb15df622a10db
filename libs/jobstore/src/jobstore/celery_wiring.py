"""The one Celery configuration both sides use: the gateway sends by task name, the worker runs it.

Settings for long CPU-bound tasks, as the Celery docs ("Prefetch limits", "Visibility timeout")
and production users such as paperless-ngx and Airflow set them:
- late acks plus reject-on-worker-lost: a task whose worker dies goes back to the queue, and the
  task is idempotent, so running it twice yields one result;
- prefetch 1: fair dispatch, and the queue length shows the real backlog to an autoscaler;
- JSON only: no pickle from a broker anyone on the network might write to;
- a soft limit below the hard one, so a stuck image is marked failed before its process is killed;
- a visibility timeout above the hard limit, so Redis does not hand a running task to a second
  worker while the first is still on it;
- no Celery result backend: a job's results (the image, its status, faces and timings) live in
  the jobstore's records and blob store, which the gateway reads. Celery's own per-task result
  would duplicate them at the cost of a SET and a PUBLISH per image in the worker, and with the
  Redis backend every ``send_task`` also subscribes the gateway to the task's result channel, a
  subscription nothing ever reads (celery/celery#3808, #4707).

Videos have a queue of their own (``video``), so one long recording never holds up photos:
workers for it are started with ``-Q video`` (or ``-Q celery,video`` to take both). A video is
split into segments, each detected and written by a task of its own, on whichever video workers
are free (fpg_worker.videos); each task's time limits follow the stretch of video it covers
(``video_time_limits``), a segment's for a segment, never the whole video's. They can still run
past the visibility timeout, and Redis then hands the running task to a second worker; that
delivery finds the task's lease held by the first (``jobstore.video_records``), and instead of
running it again it re-sends itself ``VIDEO_LEASE_SECONDS`` later, until the first finishes or
dies (its lease lapses and the delivery takes over). So a task runs on one worker at a time,
while the visibility timeout stays short for photos.
"""

import redis
from celery import Celery

from jobstore.settings import StoreSettings

ANONYMIZE_TASK = "fpg.anonymize_image"
QUEUE = "celery"  # Celery's default list in Redis; an autoscaler watches its length
VISIBILITY_MARGIN_SECONDS = 60
# A video's tasks, in the order they run: the gateway sends the first; each sends the next.
VIDEO_TASK = "fpg.video.anonymize"  # plans the segments
VIDEO_DETECT_TASK = "fpg.video.detect"  # one per segment
VIDEO_TRACK_TASK = "fpg.video.track"
VIDEO_WRITE_TASK = "fpg.video.write"  # one per segment
VIDEO_JOIN_TASK = "fpg.video.join"
VIDEO_QUEUE = "video"
# A worker renews its lease on a video's task with every progress report (a few times a second)
# and from a thread every quarter of this; one that has not for this long is taken for dead, and
# a redelivery of its task (the worker process was killed) takes it over this much later.
VIDEO_LEASE_SECONDS = 15
# The processing time a second of video may take: the default profile runs at about a third of
# real time on 960x540 (docs/video-benchmarks.md), 1080p takes about four times as long, and
# the thorough profile longer still; the limit is there to stop a stuck task, not a slow one.
VIDEO_SECONDS_PER_SECOND = 40
VIDEO_BASE_SECONDS = 120


# The steps over a whole clip (planning, tracking, joining) demux, track boxes or copy packets,
# decoding nothing: their time limits count this share of the clip as video to process.
WHOLE_CLIP_SHARE = 0.05


def video_time_limits(declared_seconds: float) -> tuple[int, int]:
    """The soft and hard time limits of work on ``declared_seconds`` of video: a segment's task,
    or, for the whole clip, how long its record must outlive its upload."""
    soft = VIDEO_BASE_SECONDS + round(VIDEO_SECONDS_PER_SECOND * declared_seconds)
    return soft, soft + VIDEO_BASE_SECONDS


def make_celery(settings: StoreSettings) -> Celery:
    app = Celery("fpg", broker=settings.redis_url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_routes={"fpg.video.*": {"queue": VIDEO_QUEUE}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_hard_time_limit,
        broker_transport_options={
            "visibility_timeout": settings.task_hard_time_limit + VISIBILITY_MARGIN_SECONDS
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_track_started=False,
    )
    return app


QUEUES = (QUEUE, VIDEO_QUEUE)


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Tasks waiting for a worker in each queue (running ones are no longer in its list): images
    in ``celery``, the steps of videos (most of them one segment's) in ``video``."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
    return {queue: int(depth) for queue, depth in zip(QUEUES, pipe.execute(), strict=True)}
