"""Section 4 of docs/benchmarks.md: the service (gateway + Celery worker) against blurcore alone.

Both sides run on this machine's cores, one after the other: the library in 1 and in 2 spawned
processes, then a private Redis, the gateway and a worker with 1 and with 2 processes, started
with the functions ``fpg-local`` uses. The client runs in this process.
"""

import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Barrier
from typing import TextIO

import httpx
from page import Check, checks_table, markdown_table, progress
from PIL import Image
from rounds import Payload, read_payloads

from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer
from fpg_api.localstack import start_gateway, start_private_redis, start_worker, stop_all

SERVICE_ROUNDS = 3
WORKER_PROCESS_COUNTS = (1, 2)
REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS = 2
LATENCY_REQUESTS = 20
LATENCY_PHOTO_SIZE = (1024, 768)
WAIT_SECONDS = 30
WORKER_ENV = {"FPG_INFERENCE_THREADS": "1"}
LOOPBACK = "127.0.0.1"

HTTP_TIMEOUT_SECONDS = WAIT_SECONDS + 30
WORKER_START_TIMEOUT_SECONDS = 120
LIBRARY_TIMEOUT_SECONDS = 300
ROUND_START_TIMEOUT_SECONDS = 120

TARGET_THROUGHPUT_RATIO = 0.9
TARGET_LATENCY_OVERHEAD_MS = 30.0

Timings = list[list[float]]
"""Seconds per image per timed round: ``timings[round][image]``."""


@dataclass(frozen=True)
class Throughput:
    images: int
    round_seconds: list[float]
    image_seconds: list[float]  # library: each process() call; service: each job in the worker

    @property
    def median_round_seconds(self) -> float:
        return statistics.median(self.round_seconds)

    @property
    def images_per_second(self) -> float:
        return self.images / self.median_round_seconds


@dataclass(frozen=True)
class ServiceFigures:
    library: dict[int, Throughput]  # by process count
    service: dict[int, Throughput]  # by worker process count
    photo: Path
    library_photo_seconds: list[float]
    request_seconds: list[float]  # client-observed, POST ?wait= until the image is received
    worker_job_seconds: list[float]  # the same requests, as the worker timed each job
    load_average: float  # 1-minute, when the section started


def measure_service(paths: list[Path]) -> ServiceFigures:
    load_average = os.getloadavg()[0]
    photo = first_photo_of_size(paths, LATENCY_PHOTO_SIZE)
    payloads = read_payloads(paths)
    [photo_payload] = read_payloads([photo])
    library = {n: library_throughput(payloads, n) for n in WORKER_PROCESS_COUNTS}
    progress("service: the library on the 1024 px photo, 1 process")
    library_photo_seconds = library_photo_timings(photo_payload)
    service, request_seconds, worker_job_seconds = measure_through_gateway(payloads, photo_payload)
    return ServiceFigures(
        library=library,
        service=service,
        photo=photo,
        library_photo_seconds=library_photo_seconds,
        request_seconds=request_seconds,
        worker_job_seconds=worker_job_seconds,
        load_average=load_average,
    )


def first_photo_of_size(paths: list[Path], size: tuple[int, int]) -> Path:
    for path in paths:
        with Image.open(path) as image:
            if image.size == size:
                return path
    raise FileNotFoundError(f"no {size[0]}x{size[1]} photo in the data set")


# The library alone, in spawned processes that each load their own detectors


def time_library_share(payloads: list[Payload], rounds: int, start_together: Barrier) -> Timings:
    """In a child: the default profile with 1 inference thread, as one worker process runs it.

    One untimed pass loads every image size into the detectors; then each timed round starts when
    every child is ready, so the children share the cores the way a worker's processes do.
    """
    anonymizer = Anonymizer(threads=1)
    anonymizer.load((Profile.DEFAULT,))
    params = AnonymizeParams()
    for _, data in payloads:
        anonymizer.process(data, params)
    timings = []
    for _ in range(rounds):
        start_together.wait(ROUND_START_TIMEOUT_SECONDS)
        seconds = []
        for _, data in payloads:
            started = time.perf_counter()
            anonymizer.process(data, params)
            seconds.append(time.perf_counter() - started)
        timings.append(seconds)
    return timings


def in_library_processes(shares: list[list[Payload]], rounds: int) -> list[Timings]:
    """Runs ``time_library_share`` on each share in a process of its own, all at once."""
    spawn = multiprocessing.get_context("spawn")
    with (
        spawn.Manager() as manager,
        ProcessPoolExecutor(max_workers=len(shares), mp_context=spawn) as pool,
    ):
        start_together = manager.Barrier(len(shares))
        futures = [
            pool.submit(time_library_share, share, rounds, start_together) for share in shares
        ]
        return [future.result(timeout=LIBRARY_TIMEOUT_SECONDS) for future in futures]


def library_throughput(payloads: list[Payload], processes: int) -> Throughput:
    progress(f"service: the library alone, {processes} process(es) with 1 thread each")
    shares = [payloads[first::processes] for first in range(processes)]
    per_process = in_library_processes(shares, SERVICE_ROUNDS)
    return Throughput(
        images=len(payloads),
        round_seconds=[
            max(sum(timings[round_]) for timings in per_process) for round_ in range(SERVICE_ROUNDS)
        ],
        image_seconds=[s for timings in per_process for round_ in timings for s in round_],
    )


def library_photo_timings(photo: Payload) -> list[float]:
    """``process()`` on one photo, one call per timed round, in one process."""
    [timings] = in_library_processes([[photo]], rounds=LATENCY_REQUESTS)
    return [s for round_ in timings for s in round_]


# The service: a private Redis, the gateway and a worker, all stopped on the way out


def measure_through_gateway(
    payloads: list[Payload], photo: Payload
) -> tuple[dict[int, Throughput], list[float], list[float]]:
    """Throughput with each worker size; the latency of ``photo`` with 1 worker process."""
    with private_stack() as stack:
        progress("service: gateway and a worker with 1 process")
        with running_worker(stack, processes=1):
            one_process = asyncio.run(gateway_throughput(stack.gateway_url, payloads, 1))
            progress(f"service: {LATENCY_REQUESTS} single requests, 1 worker process")
            request_seconds, worker_job_seconds = asyncio.run(
                gateway_latency(stack.gateway_url, photo)
            )
        progress("service: gateway and a worker with 2 processes")
        with running_worker(stack, processes=2):
            two_processes = asyncio.run(gateway_throughput(stack.gateway_url, payloads, 2))
    return {1: one_process, 2: two_processes}, request_seconds, worker_job_seconds


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
                started.append(start_gateway(redis_url, LOOPBACK, gateway_port))
            yield LocalStack(redis_url, f"http://{LOOPBACK}:{gateway_port}", log)
        finally:
            stop_all(started)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


# The client


async def gateway_throughput(
    gateway_url: str, payloads: list[Payload], processes: int
) -> Throughput:
    """Every photo per round, a few requests in flight per worker process so none waits for work.

    One untimed round first, so that each worker process has loaded its models and seen the
    image sizes, as the library's processes have.
    """
    in_flight = REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS * processes
    async with gateway_client(gateway_url) as client:
        await wait_for_worker(client, payloads[0])
        await post_all(client, payloads, in_flight)
        round_seconds, image_seconds = [], []
        for _ in range(SERVICE_ROUNDS):
            seconds, job_ids = await post_all(client, payloads, in_flight)
            round_seconds.append(seconds)
            image_seconds += await worker_job_seconds(client, job_ids)
    return Throughput(len(payloads), round_seconds, image_seconds)


async def gateway_latency(gateway_url: str, photo: Payload) -> tuple[list[float], list[float]]:
    """One request at a time: client-observed seconds, and the worker's seconds for each job."""
    async with gateway_client(gateway_url) as client:
        await post_image(client, photo)
        request_seconds, job_ids = [], []
        for _ in range(LATENCY_REQUESTS):
            started = time.perf_counter()
            job_ids.append(await post_image(client, photo))
            request_seconds.append(time.perf_counter() - started)
        return request_seconds, await worker_job_seconds(client, job_ids)


def gateway_client(gateway_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway_url, timeout=HTTP_TIMEOUT_SECONDS)


async def wait_for_worker(client: httpx.AsyncClient, payload: Payload) -> None:
    """Returns once an upload is answered with its image: a worker process has its models."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
    while (await upload(client, payload)).status_code != httpx.codes.OK:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no worker answered within {WORKER_START_TIMEOUT_SECONDS} s")


async def post_all(
    client: httpx.AsyncClient, payloads: list[Payload], in_flight: int
) -> tuple[float, list[str]]:
    """Seconds from the first upload to the last image received, and the job ids."""
    slots = asyncio.Semaphore(in_flight)

    async def post_in_slot(payload: Payload) -> str:
        async with slots:
            return await post_image(client, payload)

    started = time.perf_counter()
    job_ids = await asyncio.gather(*(post_in_slot(payload) for payload in payloads))
    return time.perf_counter() - started, job_ids


async def post_image(client: httpx.AsyncClient, payload: Payload) -> str:
    """Uploads with ``?wait=`` and returns the job id once the anonymized image is received."""
    response = await upload(client, payload)
    if response.status_code != httpx.codes.OK:
        raise RuntimeError(
            f"POST /v1/images?wait={WAIT_SECONDS} answered {response.status_code}, "
            f"not the image: {response.text[:200]}"
        )
    return response.headers["X-Job-Id"]


async def upload(client: httpx.AsyncClient, payload: Payload) -> httpx.Response:
    extension, data = payload
    return await client.post(
        "/v1/images", params={"wait": WAIT_SECONDS}, files={"file": (f"photo{extension}", data)}
    )


async def worker_job_seconds(client: httpx.AsyncClient, job_ids: list[str]) -> list[float]:
    """How long each job took in the worker: fetch, ``process()``, store the result."""
    views = await asyncio.gather(*(client.get(f"/v1/jobs/{job_id}") for job_id in job_ids))
    return [float(view.raise_for_status().json()["processing_seconds"]) for view in views]


# The section of the page


def service_section(figures: ServiceFigures, dataset_label: str) -> list[str]:
    return [
        "## 4. The service against the library",
        "",
        f"The {figures.service[1].images} photos of `{dataset_label}` through the HTTP gateway, "
        "and through blurcore alone, one after the other in this run on the same cores. Service: "
        "a private Redis on a loopback port, the gateway (`uvicorn`, one process) and a Celery "
        "worker (prefork, `FPG_INFERENCE_THREADS=1`), started by `fpg_api.localstack` as "
        "`fpg-local` starts them; the client (`httpx`, asyncio) runs in the benchmark's process. "
        f"Each photo is posted with `?wait={WAIT_SECONDS}`, "
        f"{REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS} requests in flight per worker process; a round "
        "lasts from the first upload to the last image received. Library: "
        "`Anonymizer(threads=1).process` in 1 process, or in 2 independent spawned processes "
        "each given every other photo, their rounds started together; a round lasts as long as "
        "the slower process. The default profile; one untimed warm-up round, then the median of "
        f"{SERVICE_ROUNDS} rounds. The last column is the median time of one image inside: "
        "`process()` for the library, the worker's job (fetch, `process()`, store) for the "
        f"service. 1-minute load average when the section started: {figures.load_average:.2f}.",
        "",
        *throughput_table(figures),
        "",
        f"Latency: `{figures.photo.name}` ({LATENCY_PHOTO_SIZE[0]}x{LATENCY_PHOTO_SIZE[1]}), "
        f"{LATENCY_REQUESTS} requests one at a time with `?wait={WAIT_SECONDS}` to a worker with "
        "1 process and nothing else queued, timed by the client from the upload to the image "
        f"received; beside it `process()` on the same photo, {LATENCY_REQUESTS} calls in one "
        "process with 1 thread after one untimed call.",
        "",
        *latency_table(figures),
        "",
        *checks_table(service_checks(figures)),
    ]


def throughput_table(figures: ServiceFigures) -> list[str]:
    rows = []
    for processes in WORKER_PROCESS_COUNTS:
        library, service = figures.library[processes], figures.service[processes]
        ratio = service.images_per_second / library.images_per_second
        rows += [
            throughput_row(f"library, {processes} process(es)", library, "-"),
            throughput_row(
                f"service, worker with {processes} process(es)", service, f"{ratio:.2f}"
            ),
        ]
    header = ["measurement", "median round (s)", "images/s", "service / library", "median ms/image"]
    return markdown_table(header, rows)


def throughput_row(name: str, throughput: Throughput, ratio: str) -> list[str]:
    return [
        name,
        f"{throughput.median_round_seconds:.2f}",
        f"{throughput.images_per_second:.2f}",
        ratio,
        f"{milliseconds(statistics.median(throughput.image_seconds)):.0f}",
    ]


def latency_table(figures: ServiceFigures) -> list[str]:
    header = ["measurement", "calls", "p50 ms", "p95 ms", "p99 ms"]
    return markdown_table(
        header,
        [
            latency_row(
                "service: `POST /v1/images?wait=30`, client-observed", figures.request_seconds
            ),
            latency_row("service: the same jobs inside the worker", figures.worker_job_seconds),
            latency_row("library: `process()`", figures.library_photo_seconds),
        ],
    )


def latency_row(name: str, seconds: list[float]) -> list[str]:
    return [name, str(len(seconds)), *(f"{percentile_ms(seconds, p):.0f}" for p in (50, 95, 99))]


def service_checks(figures: ServiceFigures) -> list[Check]:
    checks = []
    for processes in WORKER_PROCESS_COUNTS:
        ratio = (
            figures.service[processes].images_per_second
            / figures.library[processes].images_per_second
        )
        checks.append(
            Check(
                f"service / library images/s, {processes} process(es)",
                f"{ratio:.2f}",
                f">= {TARGET_THROUGHPUT_RATIO:.2f}",
                ratio >= TARGET_THROUGHPUT_RATIO,
            )
        )
    overhead_ms = percentile_ms(figures.request_seconds, 50) - milliseconds(
        statistics.median(figures.library_photo_seconds)
    )
    checks.append(
        Check(
            f"p50 latency of the {LATENCY_PHOTO_SIZE[0]} px photo minus the library's median",
            f"{overhead_ms:+.0f} ms",
            f"<= {TARGET_LATENCY_OVERHEAD_MS:.0f} ms",
            overhead_ms <= TARGET_LATENCY_OVERHEAD_MS,
        )
    )
    return checks


def percentile_ms(seconds: list[float], percent: int) -> float:
    return milliseconds(statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1])


def milliseconds(seconds: float) -> float:
    return seconds * 1000
