"""The scaling benchmark's arithmetic and page, and the service section of docs/benchmarks.md, on
made-up rounds (a real run needs a Redis and, for scaling, many cores)."""

from pathlib import Path

import pytest

from bench import scaling_bench
from bench.scaling_bench import Scaling, copies_per_round, default_process_counts
from bench.service_bench import (
    LATENCY_REQUESTS,
    Latency,
    ServiceFigures,
    Throughput,
    ThroughputPair,
    service_section,
)


def rounds(images: int, processes: int, seconds: float) -> Throughput:
    return Throughput(images, processes, [seconds] * 3, [seconds / images] * images * 3)


def scaling(library_at_4: float, service_at_4: float) -> Scaling:
    """1 process: 10 images/s on both sides; 4 processes: the images/s given."""
    return Scaling(
        {
            1: ThroughputPair(rounds(50, 1, 5.0), rounds(50, 1, 5.0)),
            4: ThroughputPair(rounds(50, 4, 50 / library_at_4), rounds(50, 4, 50 / service_at_4)),
        }
    )


def test_efficiency_is_each_side_against_its_own_single_process():
    measured = scaling(library_at_4=32.0, service_at_4=30.0)
    assert measured.library_efficiency(4) == pytest.approx(0.8)
    assert measured.service_efficiency(4) == pytest.approx(0.75)
    assert measured.efficiency_share(4) == pytest.approx(0.75 / 0.8)


def test_page_marks_a_share_under_the_target():
    page = scaling_bench.scaling_page(scaling(32.0, 30.0), Path())
    assert "| service / library scaling efficiency, 4 processes | 0.94 | >= 0.95 | **no** |" in page
    page = scaling_bench.scaling_page(scaling(32.0, 31.0), Path())
    assert "| service / library scaling efficiency, 4 processes | 0.97 | >= 0.95 | yes |" in page


@pytest.mark.parametrize(("processes", "copies"), [(1, 1), (4, 1), (5, 2), (8, 2), (16, 4)])
def test_every_process_gets_at_least_a_dozen_images_a_round(processes, copies):
    assert copies_per_round(50, processes) == copies


@pytest.mark.parametrize(("cores", "counts"), [(1, [1]), (6, [1, 2, 4]), (16, [1, 2, 4, 8, 16])])
def test_default_process_counts_double_up_to_the_cores(monkeypatch, cores, counts):
    monkeypatch.setattr(scaling_bench.os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert default_process_counts() == counts


def test_service_section_checks_throughput_at_each_process_count_and_latency():
    measured = scaling(library_at_4=32.0, service_at_4=28.0)
    latency = Latency(
        Path("photo.jpg"),
        library_seconds=[0.400] * LATENCY_REQUESTS,
        request_seconds=[0.440] * LATENCY_REQUESTS,
        worker_job_seconds=[0.420] * LATENCY_REQUESTS,
    )
    section = service_section(ServiceFigures(measured.pairs, latency, (1.5, 2.25)), "dev")
    assert "The 50 photos of `dev`" in section
    assert "1.50 when the section started, 2.25 when it ended" in " ".join(section.split())
    assert "| service / library images/s, 1 process | 1.00 | >= 0.90 | yes |" in section
    assert "| service / library images/s, 4 processes | 0.88 | >= 0.90 | **no** |" in section
    assert "minus the library's median | +40 ms | <= 30 ms | **no** |" in section
