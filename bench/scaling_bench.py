"""docs/scaling.md: how the service and blurcore alone scale from 1 to N worker processes.

For each process count, the pairing of section 4 of docs/benchmarks.md: the library in that many
spawned processes and a worker with that many, their timed rounds alternating on the same cores.
Scaling efficiency at N is images/s at N over N times images/s at 1, each side against its own
single process; the service should keep at least 95% of the library's own efficiency at every N.
Worth running where there are many cores: `make bench-scaling` measures 1, 2, 4, ... up to this
machine's core count.

    uv run python -m bench.scaling_bench [--dataset DIR] [--out FILE] [--processes 1 2 4 ...]
        [--limit N]
"""

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from blurcore.evaluation import Sample

from .page import Check, checks_table, fill, machine_header, markdown_table
from .rounds import read_payloads
from .runner import DEV_PHOTOS, DOCS, annotated_photos, display_path, progress, run_page
from .service_bench import (
    REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS,
    SERVICE_ROUNDS,
    Throughput,
    ThroughputPair,
    image_size,
    process_count,
    throughput_side_by_side,
)
from .service_client import WAIT_SECONDS
from .service_stack import private_stack, running_worker

# A round sends every photo this many times over per process at least, so that at 16 processes
# a round is not decided by whichever process drew the largest photo last.
IMAGES_PER_PROCESS = 12
TARGET_EFFICIENCY_SHARE = 0.95


@dataclass(frozen=True)
class Scaling:
    pairs: dict[int, ThroughputPair]  # by process count, 1 first

    def library_efficiency(self, processes: int) -> float:
        return efficiency(self.pairs[1].library, self.pairs[processes].library)

    def service_efficiency(self, processes: int) -> float:
        return efficiency(self.pairs[1].service, self.pairs[processes].service)

    def efficiency_share(self, processes: int) -> float:
        """The service's scaling efficiency over the library's at the same process count."""
        return self.service_efficiency(processes) / self.library_efficiency(processes)


def efficiency(single: Throughput, many: Throughput) -> float:
    return many.images_per_second / (many.processes * single.images_per_second)


def copies_per_round(photos: int, processes: int) -> int:
    return math.ceil(IMAGES_PER_PROCESS * processes / photos)


def measure_scaling(paths: list[Path], process_counts: list[int]) -> Scaling:
    payloads = read_payloads(paths)
    pixels = [width * height for width, height in map(image_size, paths)]
    pairs = {}
    with private_stack() as stack:
        for processes in process_counts:
            copies = copies_per_round(len(paths), processes)
            with running_worker(stack, processes):
                pairs[processes] = throughput_side_by_side(
                    stack, payloads * copies, pixels * copies, processes
                )
            progress(
                f"{process_count(processes)}: library "
                f"{pairs[processes].library.images_per_second:.1f} images/s, service "
                f"{pairs[processes].service.images_per_second:.1f}"
            )
    return Scaling(pairs)


def scaling_page(scaling: Scaling, dataset: Path) -> str:
    header = [
        "processes",
        "images a round",
        "library images/s",
        "library efficiency",
        "service images/s",
        "service efficiency",
        "service / library images/s",
        "service / library efficiency",
    ]
    rows = [
        [
            str(processes),
            str(pair.library.images),
            f"{pair.library.images_per_second:.1f}",
            f"{scaling.library_efficiency(processes):.2f}",
            f"{pair.service.images_per_second:.1f}",
            f"{scaling.service_efficiency(processes):.2f}",
            f"{pair.ratio:.2f}",
            f"{scaling.efficiency_share(processes):.2f}",
        ]
        for processes, pair in scaling.pairs.items()
    ]
    checks = [
        Check(
            f"service / library scaling efficiency, {process_count(processes)}",
            f"{scaling.efficiency_share(processes):.2f}",
            f">= {TARGET_EFFICIENCY_SHARE:.2f}",
            scaling.efficiency_share(processes) >= TARGET_EFFICIENCY_SHARE,
        )
        for processes in scaling.pairs
        if processes > 1
    ]
    return fill(
        "scaling",
        photos=str(scaling.pairs[1].library.images),
        dataset=display_path(dataset),
        wait=str(WAIT_SECONDS),
        in_flight=str(REQUESTS_IN_FLIGHT_PER_WORKER_PROCESS),
        rounds=str(SERVICE_ROUNDS),
        images_per_process=str(IMAGES_PER_PROCESS),
        machine=machine_header(),
        table=markdown_table(header, rows),
        checks=checks_table(checks),
    )


def default_process_counts() -> list[int]:
    """1, 2, 4, ... up to this machine's cores."""
    cores = len(os.sched_getaffinity(0))
    return [2**power for power in range(cores.bit_length()) if 2**power <= cores]


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processes", type=int, nargs="+", help="process counts (1 is always measured first)"
    )


def measure_page(args: argparse.Namespace, samples: list[Sample]) -> str:
    process_counts = sorted({1, *(args.processes or default_process_counts())})
    scaling = measure_scaling([sample.path for sample in samples], process_counts)
    return scaling_page(scaling, args.dataset)


def main(argv: Sequence[str] | None = None) -> int:
    page = DOCS / "scaling.md"
    return run_page(__doc__, page, DEV_PHOTOS, annotated_photos, measure_page, add_options, argv)


if __name__ == "__main__":
    sys.exit(main())
