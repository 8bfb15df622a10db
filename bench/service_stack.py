"""The service as ``fpg-local`` starts it, for the benchmarks: a private Redis, the gateway and a
worker on loopback, all stopped on the way out, their logs in a file of their own."""

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fpg_api.localstack import free_port, start_gateway, start_private_redis, start_worker, stop_all

from .runner import progress

# Every round sends the same photos again: reusing stored results would measure the cache. The
# audit trail goes to a file of this run's own, not the repository's var/.
AUDIT_DATABASE = Path(tempfile.gettempdir()) / f"fpg-bench-audit-{os.getpid()}.db"


STACK_ENV = {"FPG_REUSE_RESULTS": "false", "FPG_AUDIT_DATABASE_URL": f"sqlite:///{AUDIT_DATABASE}"}


WORKER_ENV = {"FPG_INFERENCE_THREADS": "1", **STACK_ENV}


LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class LocalStack:
    redis_url: str
    gateway_url: str
    log: TextIO  # where Redis, the gateway and the worker write


@contextmanager
def private_stack() -> Iterator[LocalStack]:
    """A private Redis and the gateway on free loopback ports, stopped on the way out."""
    redis_url = f"redis://{LOOPBACK}:{free_port()}/0"
    gateway_port = free_port()
    log_file = Path(tempfile.gettempdir()) / "fpg-bench-service.log"
    progress(f"service: Redis, gateway and worker write their logs to {log_file}")
    started = []
    with log_file.open("w") as log:
        try:
            with children_writing_to(log):
                started.append(start_private_redis(redis_url))
                started.append(start_gateway(redis_url, LOOPBACK, gateway_port, STACK_ENV))
            yield LocalStack(redis_url, f"http://{LOOPBACK}:{gateway_port}", log)
        finally:
            stop_all(started)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{AUDIT_DATABASE}{suffix}").unlink(missing_ok=True)


@contextmanager
def running_worker(stack: LocalStack, processes: int) -> Iterator[None]:
    with children_writing_to(stack.log):
        worker = start_worker(stack.redis_url, processes, WORKER_ENV)
    try:
        yield
    finally:
        stop_all([worker])


@contextmanager
def children_writing_to(log: TextIO) -> Iterator[None]:
    """Processes started inside write their stdout and stderr to ``log``: the worker logs every
    job, the gateway every upload, and those lines would bury the benchmark's own."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        for fd in saved:
            os.dup2(log.fileno(), fd)
        yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
