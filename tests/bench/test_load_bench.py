"""The load section of docs/reliability.md, on made-up figures (a real run needs hey)."""

from bench.load_bench import LoadFigures, load_section


def figures(codes: dict[str, int], workers_mib: tuple[float, float]) -> LoadFigures:
    return LoadFigures(
        requests=1000,
        concurrency=4,
        status_codes=codes,
        requests_per_second=29.9,
        latency_ms={"p50": 129.0, "p99": 180.4},
        gateway_mib=(168.0, 169.7),
        workers_mib=workers_mib,
        seconds=33.4,
    )


def test_every_request_answered_and_flat_memory_meet_the_targets():
    section = load_section(figures({"200": 1000}, (640.0, 640.5)))
    assert "1000 requests, 4 at a time" in section
    assert "33 s in all" in section
    assert table_rows(section) == [
        "| answered 200 | 1000 of 1000 | all | yes |",
        "| any other answer | none | none | yes |",
        "| throughput | 29.9 images/s |  |  |",
        "| latency p50 | 129 ms |  |  |",
        "| latency p99 | 180 ms |  |  |",
        "| gateway memory (RSS, all its processes) | 168 MiB after warm-up, 170 MiB after the "
        "run: +1.7 MiB per 1,000 images | flat (< 20 MiB per 1,000) | yes |",
        "| workers memory (RSS, all its processes) | 640 MiB after warm-up, 640 MiB after the "
        "run: +0.5 MiB per 1,000 images | flat (< 20 MiB per 1,000) | yes |",
    ]


def table_rows(section: str) -> list[str]:
    return [line for line in section.splitlines() if line.startswith("| ")][2:]


def test_errors_and_a_leak_are_marked():
    section = load_section(figures({"200": 990, "503": 10}, (640.0, 700.0)))
    assert "| any other answer | 503: 10 | none | **no** |" in section
    assert "+60.0 MiB per 1,000 images | flat (< 20 MiB per 1,000) | **no** |" in section
