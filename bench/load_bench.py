"""`make bench-load`: sustained single-image traffic against a local stack, with `hey`.

Starts a private Redis, a worker (one process per core) and the gateway on loopback, warms up,
then sends N single-image requests (`?wait=30`, C at a time) and reports the status codes, the
latency percentiles, the throughput, and the resident memory of gateway and workers before and
after, so a leak shows as growth per 1,000 images. Everything stays on 127.0.0.1.

    uv run python bench/load_bench.py [--requests 1000] [--concurrency 4] [--out FILE.md]
"""

import argparse
import os
import platform
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

REPORT_START = "<!-- load-bench:start -->"
REPORT_END = "<!-- load-bench:end -->"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
FLAT_MIB_PER_1000 = 20


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
        url = f"http://127.0.0.1:{port}/v1/images?wait=30"
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


def _markdown(figures: LoadFigures, command: str) -> str:
    answered = figures.status_codes.get("200", 0)
    all_ok = answered == figures.requests
    others = [f"{code}: {n}" for code, n in figures.status_codes.items() if code != "200"]
    machine = platform.processor() or platform.machine()
    lines = [
        REPORT_START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine}, "
        f"{os.cpu_count()} cores, with `{command}`: {figures.requests} requests, "
        f"{figures.concurrency} at a time, one 512x512 portrait each with `?wait=30`, "
        f"worker processes = cores, {figures.seconds:.0f} s in all.",
        "",
        "| figure | value | target | met? |",
        "|---|---|---|---|",
        f"| answered 200 | {answered} of {figures.requests} | all | {_met(all_ok)} |",
        f"| any other answer | {', '.join(others) or 'none'} | none | {_met(all_ok)} |",
        f"| throughput | {figures.requests_per_second:.1f} images/s | | |",
    ]
    lines += [f"| latency {name} | {ms:.0f} ms | | |" for name, ms in figures.latency_ms.items()]
    for name, (before, after) in (
        ("gateway", figures.gateway_mib),
        ("workers", figures.workers_mib),
    ):
        growth = (after - before) * 1000 / figures.requests
        lines.append(
            f"| {name} memory (RSS, all its processes) | {before:.0f} MiB after warm-up, "
            f"{after:.0f} MiB after the run: {growth:+.1f} MiB per 1,000 images "
            f"| flat (< {FLAT_MIB_PER_1000} MiB per 1,000) | {_met(growth < FLAT_MIB_PER_1000)} |"
        )
    lines.append(REPORT_END)
    return "\n".join(lines)


def _met(condition: bool) -> str:
    return "yes" if condition else "no"


def _write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    if REPORT_START in text:
        head, rest = text.split(REPORT_START, 1)
        text = head + section + rest.split(REPORT_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("docs/reliability.md"))
    args = parser.parse_args()
    if shutil.which("hey") is None:
        raise SystemExit(
            "hey is not installed (Debian: apt-get install hey; `make install` does it)"
        )
    portrait = Path(tempfile.mkdtemp()) / "portrait.jpg"
    Image.fromarray(skimage.data.astronaut()).save(portrait, format="JPEG", quality=90)
    figures = run_load(portrait.read_bytes(), args.requests, args.concurrency, os.cpu_count() or 1)
    command = (
        f"make bench-load (bench/load_bench.py --requests {args.requests} "
        f"--concurrency {args.concurrency})"
    )
    section = _markdown(figures, command)
    print(section)
    _write_section(args.out, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
