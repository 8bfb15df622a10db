"""Prometheus metrics: the gateway's own requests, plus queue depths, job figures and worker
heartbeats from Redis, which every worker of the deployment writes to (so one scrape of any
gateway sees them all)."""

import time
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobstore.celery_wiring import queue_depths
from jobstore.heartbeats import Heartbeats
from jobstore.metrics import MetricsStore


class _RedisCollector(Collector):
    def __init__(self, client: redis.Redis, jobs: MetricsStore, workers: Heartbeats) -> None:
        self._client = client
        self._jobs = jobs
        self._workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        try:
            waiting = queue_depths(self._client)
            figures = self._jobs.read()
            workers = self._workers.liveness()
        except redis.RedisError:
            return  # /metrics must answer while Redis is down; /readyz reports that
        depth = GaugeMetricFamily(
            "fpg_queue_depth",
            "Tasks waiting in a broker queue: celery (images), video (steps of videos).",
            labels=["queue"],
        )
        for queue, tasks in waiting.items():
            depth.add_metric([queue], tasks)
        yield depth
        yield GaugeMetricFamily(
            "fpg_workers_alive", "Workers whose heartbeat has not expired.", workers.alive
        )
        if workers.newest_age_seconds is not None:  # no live worker, no heartbeat to age
            yield GaugeMetricFamily(
                "fpg_worker_heartbeat_age_seconds",
                "Seconds since the latest heartbeat of any worker.",
                workers.newest_age_seconds,
            )
        finished = CounterMetricFamily(
            "fpg_jobs_finished", "Images processed by the workers.", labels=["status"]
        )
        for status, count in sorted(figures.finished.items()):
            finished.add_metric([status], count)
        yield finished
        yield CounterMetricFamily("fpg_faces", "Faces anonymized by the workers.", figures.faces)
        yield HistogramMetricFamily(
            "fpg_job_duration_seconds",
            "Time a worker spent on one image.",
            buckets=[(str(bound), count) for bound, count in figures.duration_buckets],
            sum_value=figures.duration_sum,
        )


class GatewayMetrics:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fpg_http_requests",
            "HTTP requests answered by this gateway.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fpg_http_request_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(
            _RedisCollector(client, MetricsStore(client, prefix), Heartbeats(client, prefix))
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(
                time.perf_counter() - started
            )
