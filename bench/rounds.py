"""The timing loop shared by the photo benchmarks and deface_timing.py.

Standard library only: deface_timing.py runs in deface's own environment, without blurcore.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

Payload = tuple[str, bytes]
"""A file's lower-case extension (".jpg") and its bytes, read before any timing starts."""

Output = TypeVar("Output")


def read_payloads(paths: Iterable[Path]) -> list[Payload]:
    return [(path.suffix.lower(), path.read_bytes()) for path in paths]


def time_rounds(
    work: Callable[[Payload], Output], payloads: Sequence[Payload], rounds: int
) -> tuple[list[Output], list[list[float]]]:
    """Run ``work`` on every payload once untimed (warm-up), then ``rounds`` timed passes.

    Returns what the warm-up pass produced for each payload, and the seconds each payload took in
    each timed pass.
    """
    warm_up = [work(payload) for payload in payloads]
    timings = []
    for _ in range(rounds):
        seconds = []
        for payload in payloads:
            started = time.perf_counter()
            work(payload)
            seconds.append(time.perf_counter() - started)
        timings.append(seconds)
    return warm_up, timings
