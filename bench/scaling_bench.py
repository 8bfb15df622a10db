"""docs/scaling.md: how the service and blurcore alone scale from 1 to N worker processes.

For each process count, the pairing of section 4 of docs/benchmarks.md: the library in that many
spawned processes and a worker with that many, their timed rounds alternating on the same cores.
Scaling efficiency at N is images/s at N over N times images/s at 1, each side against its own
single process; the service should keep at least 95% of the library's own efficiency at every N.
Worth running where there are many cores: `make bench-scaling` measures 1, 2, 4, ... up to this
machine's core count.
"""

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from page import (
    DEFAULT_DATASET,
    REPO_ROOT,
    Check,
    checks_table,
    display_path,
    machine_lines,
    markdown_table,
    progress,
    publish,
)
from rounds import read_payloads
from service_bench import (
    SERVICE_ROUNDS,
    Throughput,
    ThroughputPair,
    image_size,
    private_stack,
    process_count,
    running_worker,
    throughput_side_by_side,
)

from blurcore.evaluation import load_samples

DEFAULT_OUT = REPO_ROOT / "docs" / "scaling.md"
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
    photos = scaling.pairs[1].library.images
    lines = [
        "# Scaling with worker processes",
        "",
        "Produced by `bench/scaling_bench.py` (`make bench-scaling`; `bench/lent_machine.sh run` "
        "on a machine without uv), which overwrites this page. "
        f"The {photos} photos of `{display_path(dataset)}`, at each process count the pairing of "
        "section 4 of [benchmarks.md](benchmarks.md): blurcore alone in N spawned processes "
        "(`Anonymizer(threads=1)`, the photos shared out by pixel count) and the service (a "
        "private Redis, one gateway process, a Celery worker with N prefork processes and "
        "`FPG_INFERENCE_THREADS=1`, the aiohttp client posting with `?wait=30`, 2 requests in "
        "flight per worker process), their timed rounds alternating on the same cores; one "
        f"untimed warm-up round, then the median of {SERVICE_ROUNDS} rounds. A round holds the "
        f"set as many times over as gives every process at least {IMAGES_PER_PROCESS} images. "
        "*Efficiency* at N is images/s at N over N times images/s at 1 process, each side "
        "against its own single process; *service / library efficiency* divides the two.",
        "",
        *machine_lines(),
        "",
        *markdown_table(
            [
                "processes",
                "images a round",
                "library images/s",
                "library efficiency",
                "service images/s",
                "service efficiency",
                "service / library images/s",
                "service / library efficiency",
            ],
            [
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
            ],
        ),
        "",
        *checks_table(
            [
                Check(
                    f"service / library scaling efficiency, {process_count(processes)}",
                    f"{scaling.efficiency_share(processes):.2f}",
                    f">= {TARGET_EFFICIENCY_SHARE:.2f}",
                    scaling.efficiency_share(processes) >= TARGET_EFFICIENCY_SHARE,
                )
                for processes in scaling.pairs
                if processes > 1
            ]
        ),
    ]
    return "\n".join(lines) + "\n"


def default_process_counts() -> list[int]:
    """1, 2, 4, ... up to this machine's cores."""
    cores = len(os.sched_getaffinity(0))
    return [2**power for power in range(cores.bit_length()) if 2**power <= cores]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--processes", type=int, nargs="+", help="process counts (1 is always measured first)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    process_counts = sorted({1, *(args.processes or default_process_counts())})
    try:
        samples = load_samples(args.dataset)
    except FileNotFoundError:
        progress(f"the evaluation set {args.dataset} is absent; nothing measured")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    scaling = measure_scaling([sample.path for sample in samples], process_counts)
    page = scaling_page(scaling, args.dataset)
    publish(page, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
