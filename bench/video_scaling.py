"""docs/video-scaling.md: one long recording through the service, spread over 1, 2, 4, ... worker
processes, beside blurcore alone on the same clip.

Makes a clip of ``--minutes`` at ``--size`` (a camera panning over the public-domain astronaut,
with sound, a keyframe every 2 s as cameras write them), then, on the same cores one after the
other: blurcore's ``VideoAnonymizer.process`` in one spawned process with one thread, and the
service (a private Redis, the gateway, a Celery worker with N prefork processes on the ``video``
list) from the upload's first byte until its status says done, at each N of ``--processes``.
Speed-up at N is the service's time at 1 over its time at N; efficiency is the speed-up over N.

    uv run python -m bench.video_scaling [--minutes 10] [--size 1920x1080]
        [--processes 1 2 4] [--segment-seconds 30]
"""

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.blurcore.video.clips import AudioSpec, ClipSpec, make_clip

from .page import Check, checks_table, fill, machine_header, markdown_table
from .runner import DOCS, progress, publish, quiet_tensorflow_lite
from .service_stack import private_stack, running_worker

RATE = 25
KEYFRAME_SECONDS = 2
POLL_SECONDS = 0.5
TARGET_EFFICIENCY_AT_4 = 0.8
TARGET_SERVICE_SHARE = 0.9
VIDEO_TIMEOUT_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Run:
    processes: int
    seconds: float
    frames: int

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds


def make_recording(path: Path, minutes: float, size: tuple[int, int]) -> int:
    """The clip; its frame count."""
    frames = round(minutes * 60 * RATE)
    spec = ClipSpec(
        frames=frames,
        size=size,
        rate=RATE,
        audio=(AudioSpec(),),
        keyframe_every=KEYFRAME_SECONDS * RATE,
    )
    make_clip(path, spec)
    return frames


def _library_child(clip: str, output: str, seconds: "multiprocessing.Queue[float]") -> None:
    from blurcore.params import AnonymizeParams
    from blurcore.pipeline import Anonymizer
    from blurcore.video.pipeline import VideoAnonymizer

    anonymizer = Anonymizer(threads=1)
    anonymizer.load()
    started = time.perf_counter()
    VideoAnonymizer(anonymizer).process(Path(clip), Path(output), AnonymizeParams())
    seconds.put(time.perf_counter() - started)


def library_run(clip: Path, frames: int, scratch: Path) -> Run:
    """blurcore alone: one spawned process with one thread, its models loaded before the timing
    starts, as a warm worker process has them."""
    context = multiprocessing.get_context("spawn")
    seconds: multiprocessing.Queue[float] = context.Queue()
    child = context.Process(
        target=_library_child, args=(str(clip), str(scratch / "library.mp4"), seconds)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the library's process failed with status {child.exitcode}")
    return Run(1, seconds.get(), frames)


def service_run(gateway_url: str, clip: Path, frames: int, processes: int) -> Run:
    """From the upload's first byte to the status saying done (the result stored)."""
    with httpx.Client(base_url=gateway_url, timeout=120) as client:
        started = time.perf_counter()
        with clip.open("rb") as stream:
            answer = client.post("/v1/videos", files={"file": (clip.name, stream, "video/mp4")})
        answer.raise_for_status()
        status_url = answer.json()["status_url"]
        while True:
            status = client.get(status_url).json()
            if status["status"] in ("done", "failed"):
                break
            if time.perf_counter() - started > VIDEO_TIMEOUT_SECONDS:
                raise SystemExit(f"the video was not done after {VIDEO_TIMEOUT_SECONDS} s")
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - started
    if status["status"] != "done":
        raise SystemExit(f"the service failed the video: {status.get('error')}")
    return Run(processes, seconds, frames)


def warm_up(gateway_url: str, scratch: Path) -> None:
    """A short clip first, so every worker process has loaded its models before any timing."""
    clip = scratch / "warm-up.mp4"
    frames = make_recording(clip, 4 / 60, (320, 180))
    service_run(gateway_url, clip, frames, 0)


def measure(
    minutes: float, size: tuple[int, int], counts: Sequence[int], segment_seconds: float
) -> str:
    with tempfile.TemporaryDirectory(prefix="fpg-video-scaling-") as directory:
        scratch = Path(directory)
        clip = scratch / "recording.mp4"
        started = time.perf_counter()
        frames = make_recording(clip, minutes, size)
        progress(
            f"made {frames} frames of {size[0]}x{size[1]} in {time.perf_counter() - started:.0f} s"
        )
        library = library_run(clip, frames, scratch)
        progress(f"library: {library.seconds:.1f} s, {library.frames_per_second:.2f} frames/s")
        service: list[Run] = []
        os.environ["FPG_VIDEO_SEGMENT_SECONDS"] = str(segment_seconds)
        os.environ["FPG_MAX_VIDEO_SECONDS"] = str(max(14400, minutes * 60 * 2))
        for processes in counts:
            with private_stack() as stack, running_worker(stack, processes):
                warm_up(stack.gateway_url, scratch)
                run = service_run(stack.gateway_url, clip, frames, processes)
            progress(f"service, {processes} processes: {run.seconds:.1f} s")
            service.append(run)
    return page(minutes, size, frames, segment_seconds, library, service)


def page(
    minutes: float,
    size: tuple[int, int],
    frames: int,
    segment_seconds: float,
    library: Run,
    service: Sequence[Run],
) -> str:
    single = service[0]
    rows = [
        [
            "blurcore alone",
            "1",
            f"{library.seconds:.1f}",
            f"{library.frames_per_second:.2f}",
            "-",
            "-",
        ]
    ]
    for run in service:
        speed_up = single.seconds / run.seconds
        rows.append(
            [
                "service",
                str(run.processes),
                f"{run.seconds:.1f}",
                f"{run.frames_per_second:.2f}",
                f"{speed_up:.2f}",
                f"{speed_up / run.processes * single.processes:.2f}",
            ]
        )
    return fill(
        "video_scaling",
        machine=machine_header(),
        minutes=f"{minutes:g}",
        size=f"{size[0]}x{size[1]}",
        frames=str(frames),
        segment_seconds=f"{segment_seconds:g}",
        table=markdown_table(
            ["measurement", "processes", "seconds", "frames/s", "speed-up", "efficiency"], rows
        ),
        checks=checks_table(checks(library, service)),
    )


def checks(library: Run, service: Sequence[Run]) -> list[Check]:
    single = service[0]
    share = single.frames_per_second / library.frames_per_second
    found = [
        Check(
            "service with 1 process / blurcore alone, frames/s",
            f"{share:.2f}",
            f">= {TARGET_SERVICE_SHARE}",
            share >= TARGET_SERVICE_SHARE,
        )
    ]
    for run in service[1:]:
        efficiency = single.seconds / run.seconds / run.processes * single.processes
        target = TARGET_EFFICIENCY_AT_4
        found.append(
            Check(
                f"efficiency at {run.processes} processes",
                f"{efficiency:.2f} ({single.seconds / run.seconds:.2f} times faster)",
                f">= {target} ({target * run.processes:.1f} times faster)",
                efficiency >= target,
            )
        )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DOCS / "video-scaling.md")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--segment-seconds", type=float, default=30.0)
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[n for n in (1, 2, 4, 8, 16) if n <= (os.cpu_count() or 1)],
    )
    args = parser.parse_args(argv)
    width, height = (int(side) for side in args.size.split("x"))
    quiet_tensorflow_lite()
    publish(measure(args.minutes, (width, height), args.processes, args.segment_seconds), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
