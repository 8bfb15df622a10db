"""``fpg-local`` (what ``make run`` starts): everything one machine needs, in the foreground.

A private Redis when none answers at ``FPG_REDIS_URL`` (its append-only file in ``FPG_REDIS_DIR``,
so queued jobs survive a restart), a worker with one process per core, and the gateway on
``FPG_HOST:FPG_PORT``. Ctrl-C or SIGTERM stops everything it started, and so does any one of them
dying.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

import redis
from pydantic import Field

from fpg_api.settings import GatewaySettings
from jobstore.celery_wiring import QUEUE, VIDEO_QUEUE
from jobstore.logs import configure_json_logging

log = logging.getLogger("fpg.local")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STOP_GRACE_SECONDS = 20


class LocalSettings(GatewaySettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Worker processes; the same name the worker image reads (Celery calls it concurrency).
    worker_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Where the private Redis (started only when none answers) keeps its append-only file.
    redis_dir: Path = Path("var/redis")


def free_port() -> int:
    """A loopback port nothing listens on now, for a private Redis or gateway."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start_private_redis(url: str, data_dir: Path | None = None) -> subprocess.Popen[bytes]:
    """A Redis on the loopback port ``url`` names. With ``data_dir`` it logs every write to an
    append-only file there, flushed to the disk every second, and a Redis started again on the
    same directory has every queued job and record back; without, it keeps nothing on disk."""
    parsed = urlparse(url)
    if parsed.hostname not in LOOPBACK:
        raise SystemExit(f"no Redis answers at {url}, and it is not on this machine to start")
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(
            f"no Redis answers at {url} and redis-server is not installed: "
            "install it (Debian: apt-get install redis-server) or set FPG_REDIS_URL"
        )
    command = [server, "--bind", "127.0.0.1", "--port", str(parsed.port or 6379)]
    command += ["--save", "", "--loglevel", "warning"]
    if data_dir is None:
        command += ["--appendonly", "no"]
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data_dir)]
    process = subprocess.Popen(command)
    wait_until(lambda: redis_answers(url), f"Redis at {url}", process)
    return process


def start_worker(
    redis_url: str, processes: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "fpg_worker.celery_app", "worker"]
    command += ["--pool", "prefork", "--concurrency", str(processes), "--loglevel", "INFO"]
    command += ["--queues", f"{QUEUE},{VIDEO_QUEUE}"]  # one worker for photos and videos alike
    command += ["--hostname", f"fpg-local-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    env = {**os.environ, "FPG_REDIS_URL": redis_url, **(extra_env or {})}
    return subprocess.Popen(command, env=env)


def start_gateway(
    redis_url: str, host: str, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fpg_api.serve"]
    command += ["--host", host, "--port", str(port), "--no-access-log"]
    env = {**os.environ, "FPG_REDIS_URL": redis_url, **(extra_env or {})}
    process = subprocess.Popen(command, env=env)
    wait_until(lambda: _http_ok(f"http://{host}:{port}/healthz"), "the gateway", process)
    return process


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode} while starting")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.1)


def stop_all(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM in reverse start order (Celery then finishes or returns its current tasks)."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    configure_json_logging()
    settings = LocalSettings()
    started: list[subprocess.Popen[bytes]] = []

    def _stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Also SIGINT: a shell starting us in the background sets it to "ignore", which Python keeps.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _stop)
    try:
        if not redis_answers(settings.redis_url):
            log.info("starting a private Redis", extra={"status": settings.redis_url})
            started.append(start_private_redis(settings.redis_url, settings.redis_dir))
        started.append(start_worker(settings.redis_url, settings.worker_concurrency))
        started.append(start_gateway(settings.redis_url, settings.host, settings.port))
        log.info(f"Face Privacy Guard is up at http://{settings.host}:{settings.port}/docs")
        while all(process.poll() is None for process in started):
            time.sleep(0.5)
        log.error("a component stopped; stopping the rest")
        return 1
    except KeyboardInterrupt:
        log.info("stopping")
        return 0
    finally:
        stop_all(started)
