"""Accepted jobs outlive a Redis restart: the queue and the records are in Redis's append-only
file (as `make run`, compose and Kubernetes run it), the payloads in the blob store."""

import signal
import time

from fpg_api.localstack import free_port, redis_answers, start_private_redis, stop_all
from jobstore.celery_wiring import QUEUE

from ..conftest import running_stack, wait_for_job

JOBS = 20


def test_queued_jobs_all_finish_once_after_redis_restarts(tmp_path, astronaut_jpeg):
    url, data_dir = f"redis://127.0.0.1:{free_port()}/0", tmp_path / "redis"
    servers = [start_private_redis(url, data_dir)]
    try:
        with running_stack(url, worker_processes=1) as stack, stack.client() as client:
            stack.worker.send_signal(signal.SIGSTOP)  # nothing consumed: all 20 stay queued
            job_ids = [
                client.post("/v1/images", files={"file": (f"{i}.jpg", astronaut_jpeg)}).json()["id"]
                for i in range(JOBS)
            ]
            assert stack.redis.llen(QUEUE) >= JOBS - 1  # the frozen worker holds one at most

            stop_all(servers)  # SIGTERM: Redis flushes its append-only file and exits
            assert not redis_answers(url)
            servers.append(start_private_redis(url, data_dir))
            stack.worker.send_signal(signal.SIGCONT)

            finished = [wait_for_job(client, job_id, timeout=240) for job_id in job_ids]
            assert [job["status"] for job in finished] == ["done"] * JOBS
            for job_id in job_ids:
                assert client.get(f"/v1/jobs/{job_id}/result").status_code == 200
            time.sleep(1)  # a redelivered copy of a finished job would be counted by now
            assert 'fpg_jobs_finished_total{status="done"} 20.0' in client.get("/metrics").text
            images = client.get("/v1/audit", params={"event": "image", "limit": 1000}).json()
            assert sorted(record["job_id"] for record in images["records"]) == sorted(job_ids)
    finally:
        stop_all(servers)
