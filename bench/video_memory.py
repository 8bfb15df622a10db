"""Does memory grow with a video's length? Resident memory while blurcore anonymizes a long clip.

Makes a clip of ``--minutes`` (a camera panning over the public-domain astronaut, with audio),
anonymizes it with the fast profile in a child process, and samples the child's resident memory
(VmRSS) as the frames go. Prints a Markdown section: the resident memory after 10%, 50% and 100%
of each pass, and the peak.

    uv run python -m bench.video_memory [--minutes 10] [--size 640x360]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.blurcore.video.clips import AudioSpec, ClipSpec, make_clip

from .page import fill, markdown_table
from .runner import progress

SAMPLE_SECONDS = 0.5
CHECKPOINTS = (0.1, 0.5, 1.0)

_CHILD = """
import json, sys
from pathlib import Path
from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer
from blurcore.video.pipeline import VideoAnonymizer

anonymizer = Anonymizer(threads=2)
anonymizer.load((Profile.FAST,))
def progress(stage, done, total):
    if done % 50 == 0 or done == total:
        print(json.dumps([stage, done, total]), flush=True)
VideoAnonymizer(anonymizer).process(
    Path(sys.argv[1]), Path(sys.argv[2]), AnonymizeParams(profile=Profile.FAST), progress
)
"""


def make_long_clip(path: Path, minutes: float, size: tuple[int, int]) -> int:
    """A ``minutes`` long 25 fps clip; its frame count."""
    frames = round(minutes * 60 * 25)
    make_clip(path, ClipSpec(frames=frames, size=size, audio=(AudioSpec(),)))
    return frames


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(clip: Path, output: Path) -> tuple[dict[str, list[tuple[float, float]]], float]:
    """Per stage, (fraction of frames done, resident MiB) samples; and the peak MiB."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(clip), str(output)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    samples: dict[str, list[tuple[float, float]]] = {}
    peak = 0.0
    for line in child.stdout:
        stage, done, total = json.loads(line)
        rss = resident_mib(child.pid)
        peak = max(peak, rss)
        samples.setdefault(stage, []).append((done / max(total, 1), rss))
    if child.wait() != 0:
        raise SystemExit(f"the anonymizing process failed with status {child.returncode}")
    return samples, peak


def at(samples: list[tuple[float, float]], fraction: float) -> float:
    return next(rss for done, rss in samples if done >= fraction - 1e-9)


def section(
    minutes: float,
    size: tuple[int, int],
    frames: int,
    samples: dict[str, list[tuple[float, float]]],
    peak: float,
) -> str:
    rows = [
        [stage, *(f"{at(points, fraction):.0f} MiB" for fraction in CHECKPOINTS)]
        for stage, points in samples.items()
    ]
    return fill(
        "video_memory",
        minutes=f"{minutes:g}",
        size=f"{size[0]}x{size[1]}",
        frames=str(frames),
        table=markdown_table(["pass", *(f"after {f:.0%}" for f in CHECKPOINTS)], rows),
        peak=f"{peak:.0f}",
    )


def memory_section(minutes: float, size: tuple[int, int] = (640, 360)) -> str:
    """Make the clip, anonymize it while sampling memory, and describe what was seen."""
    with tempfile.TemporaryDirectory() as scratch:
        clip = Path(scratch, "long.mp4")
        started = time.perf_counter()
        frames = make_long_clip(clip, minutes, size)
        progress(f"memory: made {frames} frames in {time.perf_counter() - started:.0f} s")
        samples, peak = measure(clip, Path(scratch, "out.mp4"))
    return section(minutes, size, frames, samples, peak)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(memory_section(args.minutes, (width, height)))


if __name__ == "__main__":
    main()
