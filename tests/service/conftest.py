"""A real stack for the service tests: a private Redis, a Celery worker process and the gateway,
started with the same functions ``make run`` uses, on free loopback ports."""

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from fpg_api.localstack import start_gateway, start_worker, stop_all

from ..conftest import free_port

MAX_IMAGE_BYTES = 5 * 1024 * 1024
RETENTION_SECONDS = 600


@dataclass(frozen=True)
class Stack:
    url: str
    redis: redis.Redis

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@pytest.fixture(scope="session")
def stack(redis_url: str) -> Iterator[Stack]:
    settings = {
        "FPG_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
        "FPG_RETENTION_SECONDS": str(RETENTION_SECONDS),
        "FPG_INFERENCE_THREADS": "1",
    }
    processes = []
    try:
        processes.append(start_worker(redis_url, processes=2, extra_env=settings))
        port = free_port()
        processes.append(start_gateway(redis_url, "127.0.0.1", port, extra_env=settings))
        yield Stack(url=f"http://127.0.0.1:{port}", redis=redis.Redis.from_url(redis_url))
    finally:
        stop_all(processes)


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as http:
        yield http


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.05)


def wait_for_batch(client: httpx.Client, batch_id: str, timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/batches/{batch_id}").json()
        if body["finished"] or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.1)
