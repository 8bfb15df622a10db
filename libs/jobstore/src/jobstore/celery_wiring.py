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
"""

import redis
from celery import Celery

from jobstore.settings import StoreSettings

ANONYMIZE_TASK = "fpg.anonymize_image"
QUEUE = "celery"  # Celery's default list in Redis; an autoscaler watches its length
VISIBILITY_MARGIN_SECONDS = 60


def make_celery(settings: StoreSettings) -> Celery:
    app = Celery("fpg", broker=settings.redis_url)
    app.conf.update(
        task_default_queue=QUEUE,
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


def queue_depth(client: redis.Redis) -> int:
    """Tasks waiting for a worker (running ones are no longer in the list)."""
    return int(client.llen(QUEUE))
