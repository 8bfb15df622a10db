"""The worker's heartbeat, written from the timer of its consumer's event loop (a Celery
bootstep, as the Celery docs' deadlock-detection example does): the loop that fetches tasks is
the one that beats, so a worker that stops consuming, frozen, killed or hung, stops beating, and
its heartbeat expires after ``FPG_WORKER_HEARTBEAT_TTL_SECONDS``."""

import logging
from typing import Any

import redis
from celery import bootsteps

from jobstore.heartbeats import Heartbeats

log = logging.getLogger("fpg.worker")
BEATS_PER_TTL = 3  # two beats may be lost, or late, before a live worker counts as gone


def heartbeat_step(heartbeats: Heartbeats, ttl_seconds: int) -> type[Any]:
    """A worker bootstep (``app.steps["worker"].add(...)``) that beats into ``heartbeats``."""

    class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = frozenset({"celery.worker.components:Timer"})

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self._timer_entry: Any = None

        def start(self, worker: Any) -> None:
            self._beat(worker.hostname)
            self._timer_entry = worker.timer.call_repeatedly(
                ttl_seconds / BEATS_PER_TTL, self._beat, (worker.hostname,), priority=10
            )

        def stop(self, worker: Any) -> None:
            if self._timer_entry is not None:
                self._timer_entry.cancel()
                self._timer_entry = None
            try:
                heartbeats.forget(worker.hostname)
            except redis.RedisError:  # the heartbeat then expires on its own
                log.warning("could not remove this worker's heartbeat", exc_info=True)

        terminate = stop

        def _beat(self, hostname: str) -> None:
            try:
                heartbeats.beat(hostname, ttl_seconds)
            except redis.RedisError:  # Redis down: the next beat tries again
                log.warning("could not write this worker's heartbeat", exc_info=True)

    return Heartbeat
