"""Section 4 of docs/benchmarks.md: the service (gateway + Celery worker) against blurcore alone.

Both sides run on this machine's cores, their timed rounds alternating so that both see the same
load from anything else on the machine: the library in 1 or 2 spawned processes, and a private
Redis, the gateway and a worker with as many processes, started with the functions ``fpg-local``
uses. The client runs in this process, and so does the library for the latency figures.
"""

import asyncio
import multiprocessing
import os
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Barrier

from PIL import Image

from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer

from .page import Check, checks_table, fill, markdown_table
from .rounds import Payload, read_payloads
from .runner import progress
from .service_client import (
    WAIT_SECONDS,
    Upload,
    gateway_client,
    multipart_upload,
    post_all,
    post_image,
    wait_for_worker,
    worker_job_seconds,
)
from .service_stack import LocalStack, private_stack, running_worker

SERVICE_ROUNDS = 5


REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS = 2


LATENCY_REQUESTS = 20


LATENCY_PHOTO_SIZE = (1024, 768)


LIBRARY_ROUND_TIMEOUT_SECONDS = 180  # the first round also waits for loading and warm-up


TARGET_THROUGHPUT_RATIO = 0.9


TARGET_LATENCY_OVERHEAD_MS = 30.0


Timings = list[list[float]]
"""Seconds per image per timed round: ``timings[round][image]``."""


@dataclass(frozen=True)
class Throughput:
    images: int
    processes: int
    round_seconds: list[float]
    image_seconds: list[float]  # library: each process() call; service: each job in the worker

    @property
    def median_round_seconds(self) -> float:
        return statistics.median(self.round_seconds)

    @property
    def images_per_second(self) -> float:
        return self.images / self.median_round_seconds

    @property
    def busy_share(self) -> float:
        """How much of the rounds' time the processes spent on images; the rest they waited."""
        return sum(self.image_seconds) / (self.processes * sum(self.round_seconds))


@dataclass(frozen=True)
class ThroughputPair:
    library: Throughput
    service: Throughput

    @property
    def pair_ratios(self) -> list[float]:
        """Service images/s over the library's in each pair of rounds run one after the other:
        each pair met the same load from the rest of the machine."""
        return [
            library / service
            for library, service in zip(
                self.library.round_seconds, self.service.round_seconds, strict=True
            )
        ]

    @property
    def ratio(self) -> float:
        return statistics.median(self.pair_ratios)


@dataclass(frozen=True)
class Latency:
    """The same photo, one call at a time, library and service calls alternating."""

    photo: Path
    library_seconds: list[float]  # process() in this process
    request_seconds: list[float]  # client-observed, POST ?wait= until the image is received
    worker_job_seconds: list[float]  # the same requests, as the worker timed each job

    @property
    def overhead_ms(self) -> float:
        """Service p50 minus the library's median."""
        return percentile_ms(self.request_seconds, 50) - percentile_ms(self.library_seconds, 50)


@dataclass(frozen=True)
class ServiceFigures:
    throughput: dict[int, ThroughputPair]  # by process count
    latency: Latency
    load_averages: tuple[float, float]  # 1-minute, when the section started and ended


def measure_service(paths: list[Path]) -> ServiceFigures:
    load_at_start = os.getloadavg()[0]
    sizes = [image_size(path) for path in paths]
    payloads = read_payloads(paths)
    pixels = [width * height for width, height in sizes]
    photo = sizes.index(LATENCY_PHOTO_SIZE)  # the first photo of that size
    with private_stack() as stack:
        with running_worker(stack, processes=1):
            one_process = throughput_side_by_side(stack, payloads, pixels, processes=1)
            latency = latency_side_by_side(stack, paths[photo], payloads[photo])
        with running_worker(stack, processes=2):
            two_processes = throughput_side_by_side(stack, payloads, pixels, processes=2)
    return ServiceFigures(
        throughput={1: one_process, 2: two_processes},
        latency=latency,
        load_averages=(load_at_start, os.getloadavg()[0]),
    )


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def largest_first(pixels: list[int]) -> list[int]:
    """Photo indices, most pixels first: the order that keeps the processes' loads even at the
    end of a round, for the library's shares and the service's queue alike."""
    return sorted(range(len(pixels)), key=lambda index: -pixels[index])


def balanced_shares(
    payloads: list[Payload], pixels: list[int], processes: int
) -> list[list[Payload]]:
    """One share per process: largest photos first, each to the share with the fewest pixels."""
    shares: list[list[Payload]] = [[] for _ in range(processes)]
    share_pixels = [0] * processes
    for index in largest_first(pixels):
        lightest = share_pixels.index(min(share_pixels))
        shares[lightest].append(payloads[index])
        share_pixels[lightest] += pixels[index]
    return shares


def throughput_side_by_side(
    stack: LocalStack, payloads: list[Payload], pixels: list[int], processes: int
) -> ThroughputPair:
    progress(f"service: worker and library, {process_count(processes)} each")
    uploads = [multipart_upload(payloads[index]) for index in largest_first(pixels)]
    with library_processes(balanced_shares(payloads, pixels, processes)) as library:
        service = asyncio.run(alternate_rounds(stack.gateway_url, uploads, processes, library))
        return ThroughputPair(library.throughput(), service)


def latency_side_by_side(stack: LocalStack, photo: Path, payload: Payload) -> Latency:
    progress(f"service: {photo.name}, {LATENCY_REQUESTS} single calls to each side")
    anonymizer = Anonymizer(threads=1)
    anonymizer.load((Profile.DEFAULT,))
    library_seconds, request_seconds, worker_job_seconds = asyncio.run(
        alternate_single_calls(stack.gateway_url, payload, anonymizer)
    )
    return Latency(photo, library_seconds, request_seconds, worker_job_seconds)


@dataclass(frozen=True)
class LibraryRounds:
    """Library processes that each time one round of their share whenever ``run_round`` asks."""

    gate: Barrier  # crossed by every process and the caller at the start and end of each round
    futures: list[Future[Timings]]

    def run_round(self) -> None:
        """Starts a round in every process at once and returns when all have finished it."""
        self.gate.wait(LIBRARY_ROUND_TIMEOUT_SECONDS)
        self.gate.wait(LIBRARY_ROUND_TIMEOUT_SECONDS)

    def throughput(self) -> Throughput:
        per_process = [future.result(LIBRARY_ROUND_TIMEOUT_SECONDS) for future in self.futures]
        return Throughput(
            images=sum(len(timings[0]) for timings in per_process),
            processes=len(per_process),
            round_seconds=[
                max(sum(timings[round_]) for timings in per_process)
                for round_ in range(SERVICE_ROUNDS)
            ],
            image_seconds=[s for timings in per_process for round_ in timings for s in round_],
        )


@contextmanager
def library_processes(shares: list[list[Payload]]) -> Iterator[LibraryRounds]:
    """One spawned process per share; they load and warm up while the caller goes on."""
    spawn = multiprocessing.get_context("spawn")
    with (
        spawn.Manager() as manager,
        ProcessPoolExecutor(max_workers=len(shares), mp_context=spawn) as pool,
    ):
        gate = manager.Barrier(len(shares) + 1)
        try:
            yield LibraryRounds(
                gate, [pool.submit(time_library_share, share, gate) for share in shares]
            )
        finally:
            gate.abort()  # a process still waiting for a round stops at once


def time_library_share(payloads: list[Payload], gate: Barrier) -> Timings:
    """In a child: the default profile with 1 inference thread, as one worker process runs it.

    One untimed pass loads every image size into the detectors, as the service's warm-up round.
    """
    anonymizer = Anonymizer(threads=1)
    anonymizer.load((Profile.DEFAULT,))
    params = AnonymizeParams()
    for _, data in payloads:
        anonymizer.process(data, params)
    timings = []
    for _ in range(SERVICE_ROUNDS):
        gate.wait(LIBRARY_ROUND_TIMEOUT_SECONDS)
        timings.append([seconds_to_process(anonymizer, data, params) for _, data in payloads])
        gate.wait(LIBRARY_ROUND_TIMEOUT_SECONDS)
    return timings


def seconds_to_process(anonymizer: Anonymizer, data: bytes, params: AnonymizeParams) -> float:
    started = time.perf_counter()
    anonymizer.process(data, params)
    return time.perf_counter() - started


async def alternate_rounds(
    gateway_url: str, uploads: list[Upload], processes: int, library: LibraryRounds
) -> Throughput:
    """Every photo per round, a few requests in flight per worker process so none waits for work;
    a library round before each service round.

    One untimed round first, so that each worker process has loaded its models and seen the
    image sizes, as the library's processes have (they warm up meanwhile).
    """
    in_flight = REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS * processes
    async with gateway_client(gateway_url) as client:
        await wait_for_worker(client, uploads[0])
        await post_all(client, uploads, in_flight)
        round_seconds, image_seconds = [], []
        for _ in range(SERVICE_ROUNDS):
            await asyncio.to_thread(library.run_round)
            seconds, job_ids = await post_all(client, uploads, in_flight)
            round_seconds.append(seconds)
            image_seconds += await worker_job_seconds(client, job_ids)
    return Throughput(len(uploads), processes, round_seconds, image_seconds)


async def alternate_single_calls(
    gateway_url: str, photo: Payload, anonymizer: Anonymizer
) -> tuple[list[float], list[float], list[float]]:
    """One call at a time, library then service, after one untimed call to each.

    Returns the library's seconds, the client-observed seconds of each request, and the worker's
    seconds for each job. The library runs in the event loop on purpose: nothing else is running.
    """
    _, data = photo
    prepared = multipart_upload(photo)
    params = AnonymizeParams()
    library_seconds, request_seconds, job_ids = [], [], []
    async with gateway_client(gateway_url) as client:
        anonymizer.process(data, params)
        await post_image(client, prepared)
        for _ in range(LATENCY_REQUESTS):
            library_seconds.append(seconds_to_process(anonymizer, data, params))
            started = time.perf_counter()
            job_ids.append(await post_image(client, prepared))
            request_seconds.append(time.perf_counter() - started)
        return library_seconds, request_seconds, await worker_job_seconds(client, job_ids)


def service_section(figures: ServiceFigures, dataset_label: str) -> str:
    latency = figures.latency
    load_at_start, load_at_end = figures.load_averages
    return fill(
        "service",
        photos=str(figures.throughput[1].service.images),
        dataset=dataset_label,
        wait=str(WAIT_SECONDS),
        in_flight=str(REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS),
        rounds=str(SERVICE_ROUNDS),
        load_at_start=f"{load_at_start:.2f}",
        load_at_end=f"{load_at_end:.2f}",
        throughput=throughput_table(figures.throughput),
        latency_photo=latency.photo.name,
        latency_photo_size=f"{LATENCY_PHOTO_SIZE[0]}x{LATENCY_PHOTO_SIZE[1]}",
        latency_requests=str(LATENCY_REQUESTS),
        latency=latency_table(latency),
        checks=checks_table(service_checks(figures)),
    )


def throughput_table(pairs: dict[int, ThroughputPair]) -> str:
    rows = []
    for processes, pair in pairs.items():
        rows += [
            throughput_row(f"library, {process_count(processes)}", pair.library, "-", "-"),
            throughput_row(
                f"service, worker with {process_count(processes)}",
                pair.service,
                f"{pair.ratio:.2f}",
                ", ".join(f"{ratio:.2f}" for ratio in pair.pair_ratios),
            ),
        ]
    header = [
        "measurement",
        "median round (s)",
        "images/s",
        "service / library",
        "each pair of rounds",
        "median ms/image",
        "busy share",
    ]
    return markdown_table(header, rows)


def throughput_row(name: str, throughput: Throughput, ratio: str, pair_ratios: str) -> list[str]:
    return [
        name,
        f"{throughput.median_round_seconds:.2f}",
        f"{throughput.images_per_second:.2f}",
        ratio,
        pair_ratios,
        f"{percentile_ms(throughput.image_seconds, 50):.0f}",
        f"{throughput.busy_share:.0%}",
    ]


def latency_table(latency: Latency) -> str:
    return markdown_table(
        ["measurement", "calls", "p50 ms", "p95 ms", "p99 ms"],
        [
            latency_row(
                f"service: `POST /v1/images?wait={WAIT_SECONDS}`, client-observed",
                latency.request_seconds,
            ),
            latency_row("service: the same jobs inside the worker", latency.worker_job_seconds),
            latency_row("library: `process()`", latency.library_seconds),
        ],
    )


def latency_row(name: str, seconds: list[float]) -> list[str]:
    return [name, str(len(seconds)), *(f"{percentile_ms(seconds, p):.0f}" for p in (50, 95, 99))]


def service_checks(figures: ServiceFigures) -> list[Check]:
    throughput_checks = [
        Check(
            f"service / library images/s, {process_count(processes)}",
            f"{pair.ratio:.2f}",
            f">= {TARGET_THROUGHPUT_RATIO:.2f}",
            pair.ratio >= TARGET_THROUGHPUT_RATIO,
        )
        for processes, pair in figures.throughput.items()
    ]
    overhead_ms = figures.latency.overhead_ms
    latency_check = Check(
        f"p50 latency of the {LATENCY_PHOTO_SIZE[0]} px photo minus the library's median",
        f"{overhead_ms:+.0f} ms",
        f"<= {TARGET_LATENCY_OVERHEAD_MS:.0f} ms",
        overhead_ms <= TARGET_LATENCY_OVERHEAD_MS,
    )
    return [*throughput_checks, latency_check]


def process_count(processes: int) -> str:
    return f"{processes} process" if processes == 1 else f"{processes} processes"


def percentile_ms(seconds: list[float], percent: int) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1] * 1000
