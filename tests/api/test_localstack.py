"""``make run``'s launcher: a private Redis, a worker and the gateway; SIGTERM stops them all."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fpg_api.localstack import LocalSettings, free_port, redis_answers
from fpg_audit import AuditStore


def test_fpg_local_starts_everything_and_sigterm_stops_it(astronaut_jpeg, tmp_path):
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    port = free_port()
    audit_database = f"sqlite:///{tmp_path}/var/fpg-audit.db"  # the folder does not exist yet
    env = {
        **os.environ,
        "FPG_REDIS_URL": redis_url,
        "FPG_PORT": str(port),
        "FPG_WORKER_CONCURRENCY": "1",
        "FPG_AUDIT_DATABASE_URL": audit_database,
        # Both outlive the launcher (var/redis and var/blobs by default): a run of its own.
        "FPG_REDIS_DIR": str(tmp_path / "redis"),
        "FPG_BLOB_URL": f"file:{tmp_path}/blobs",
    }
    launcher = Path(sys.executable).parent / "fpg-local"
    process = subprocess.Popen([launcher], env=env)
    try:
        deadline = time.monotonic() + 90
        answer = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v1/images?wait=30",
                    files={"file": ("me.jpg", astronaut_jpeg)},
                    timeout=40,
                )
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert answer is not None
        assert answer.status_code == 200
        assert redis_answers(redis_url)
        assert (tmp_path / "redis" / "appendonlydir").is_dir()  # every write on disk
        trail = AuditStore.connect(audit_database)
        assert [r.event for r in trail.records()] == ["image", "original_deleted"]
        trail.close()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
        assert not redis_answers(redis_url)  # the private Redis went with it
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()


def test_worker_processes_use_the_worker_images_setting(monkeypatch):
    # One name for "worker processes" in fpg-local and in the worker image.
    monkeypatch.setenv("FPG_WORKER_CONCURRENCY", "3")
    assert LocalSettings().worker_concurrency == 3
