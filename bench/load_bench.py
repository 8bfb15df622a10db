"""`make bench-load`: sustained single-image traffic against a local stack, with `hey`.

Starts a private Redis, a worker (one process per core) and the gateway on loopback, warms up,
then sends N single-image requests (`?wait=30`, C at a time) and reports the status codes, the
latency percentiles, the throughput, and the resident memory of gateway and workers before and
after, so a leak shows as growth per 1,000 images. Everything stays on 127.0.0.1.

    uv run python -m bench.load_bench [--requests 1000] [--concurrency 4] [--out FILE.md]

The figures go into ``--out`` between ``<!-- load-bench:start -->`` and ``<!-- load-bench:end -->``,
replacing the last run's; the rest of that page is written by hand.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import skimage.data
from PIL import Image

from fpg_api.localstack import free_port, start_gateway, start_private_redis, start_worker, stop_all

from .page import fill, machine_header, markdown_table, met
from .runner import DOCS, bench_options, publish_section

SECTION = "load-bench"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
FLAT_MIB_PER_1000 = 20
WAIT_SECONDS = 30


@dataclass(frozen=True)
class LoadFigures:
    requests: int
    concurrency: int
    status_codes: dict[str, int]
    requests_per_second: float
    latency_ms: dict[str, float]
    gateway_mib: tuple[float, float]
    workers_mib: tuple[float, float]
    seconds: float


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (a prefork worker and its children)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        proc = int(stat.parent.name)
        parents[proc] = int(fields[1])
        rss[proc] = int(fields[21]) * PAGE_SIZE
    members = {pid}
    grew = True
    while grew:
        before = len(members)
        members |= {proc for proc, parent in parents.items() if parent in members}
        grew = len(members) > before
    return sum(rss.get(proc, 0) for proc in members) / 2**20


def _multipart_body(image: bytes, folder: Path) -> tuple[Path, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="load.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    path = folder / "body"
    path.write_bytes(body)
    return path, f"multipart/form-data; boundary={boundary}"


def _hey(url: str, body: Path, content_type: str, requests: int, concurrency: int) -> str:
    command = ["hey", "-n", str(requests), "-c", str(concurrency), "-t", "60", "-m", "POST"]
    command += ["-T", content_type, "-D", str(body), url]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _parse_hey(output: str) -> tuple[dict[str, int], float, dict[str, float]]:
    """Status codes (plus transport errors), requests/s and latency percentiles from hey."""
    summary, _, errors = output.partition("Error distribution:")
    codes = {code: int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", summary)}
    failed = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", errors, flags=re.MULTILINE))
    if failed:
        codes["transport error"] = failed
    throughput = re.search(r"Requests/sec:\s+([\d.]+)", summary)
    latency = {
        f"p{quantile}": float(seconds) * 1000
        for quantile, seconds in re.findall(r"(\d+)%+ in ([\d.]+) secs", summary)
        if quantile in {"50", "90", "95", "99"}
    }
    return codes, float(throughput.group(1)) if throughput else 0.0, latency


def run_load(image: bytes, requests: int, concurrency: int, workers: int) -> LoadFigures:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    # One photo sent again and again: reusing its stored result would measure the cache.
    audit_folder = tempfile.TemporaryDirectory(prefix="fpg-bench-audit-")
    env = {
        "FPG_RETENTION_SECONDS": "60",
        "FPG_INFERENCE_THREADS": "1",
        "FPG_REUSE_RESULTS": "false",
        "FPG_AUDIT_DATABASE_URL": f"sqlite:///{audit_folder.name}/audit.db",
    }
    port = free_port()
    processes = [start_private_redis(redis_url)]
    try:
        worker = start_worker(redis_url, workers, extra_env=env)
        processes.append(worker)
        gateway = start_gateway(redis_url, "127.0.0.1", port, extra_env=env)
        processes.append(gateway)
        url = f"http://127.0.0.1:{port}/v1/images?wait={WAIT_SECONDS}"
        with tempfile.TemporaryDirectory() as folder:
            body, content_type = _multipart_body(image, Path(folder))
            _hey(url, body, content_type, max(20, requests // 20), concurrency)  # warm-up
            before = (_tree_rss_mib(gateway.pid), _tree_rss_mib(worker.pid))
            started = time.monotonic()
            output = _hey(url, body, content_type, requests, concurrency)
            seconds = time.monotonic() - started
            after = (_tree_rss_mib(gateway.pid), _tree_rss_mib(worker.pid))
    finally:
        stop_all(processes)
        audit_folder.cleanup()
    codes, throughput, latency = _parse_hey(output)
    return LoadFigures(
        requests=requests,
        concurrency=concurrency,
        status_codes=codes,
        requests_per_second=throughput,
        latency_ms=latency,
        gateway_mib=(before[0], after[0]),
        workers_mib=(before[1], after[1]),
        seconds=seconds,
    )


def load_section(figures: LoadFigures) -> str:
    answered = figures.status_codes.get("200", 0)
    all_ok = answered == figures.requests
    others = [f"{code}: {n}" for code, n in figures.status_codes.items() if code != "200"]
    rows = [
        ["answered 200", f"{answered} of {figures.requests}", "all", met(all_ok)],
        ["any other answer", ", ".join(others) or "none", "none", met(all_ok)],
        ["throughput", f"{figures.requests_per_second:.1f} images/s", "", ""],
        *([f"latency {name}", f"{ms:.0f} ms", "", ""] for name, ms in figures.latency_ms.items()),
    ]
    for name, (before, after) in (
        ("gateway", figures.gateway_mib),
        ("workers", figures.workers_mib),
    ):
        growth = (after - before) * 1000 / figures.requests
        rows.append(
            [
                f"{name} memory (RSS, all its processes)",
                f"{before:.0f} MiB after warm-up, {after:.0f} MiB after the run: "
                f"{growth:+.1f} MiB per 1,000 images",
                f"flat (< {FLAT_MIB_PER_1000} MiB per 1,000)",
                met(growth < FLAT_MIB_PER_1000),
            ]
        )
    return fill(
        "load",
        requests=str(figures.requests),
        concurrency=str(figures.concurrency),
        wait=str(WAIT_SECONDS),
        seconds=f"{figures.seconds:.0f}",
        machine=machine_header(),
        table=markdown_table(["figure", "value", "target", "met?"], rows),
    )


def main() -> int:
    parser = bench_options(__doc__, DOCS / "reliability.md", dataset=None)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        raise SystemExit(
            "hey is not installed (Debian: apt-get install hey; `make install` does it)"
        )
    portrait = Path(tempfile.mkdtemp()) / "portrait.jpg"
    Image.fromarray(skimage.data.astronaut()).save(portrait, format="JPEG", quality=90)
    figures = run_load(portrait.read_bytes(), args.requests, args.concurrency, os.cpu_count() or 1)
    publish_section(load_section(figures), args.out, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
