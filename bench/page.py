"""What every benchmark page shares: the machine, tables, checks against targets, progress."""

import os
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "faces" / "dev"


@dataclass(frozen=True)
class Check:
    figure: str
    measured: str
    target: str
    met: bool


def checks_table(checks: list[Check]) -> list[str]:
    return markdown_table(
        ["figure", "measured", "target", "met?"],
        [[c.figure, c.measured, c.target, "yes" if c.met else "**no**"] for c in checks],
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows)]


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def publish(page: str, out: Path) -> None:
    """Print a finished page and write it over ``out``."""
    print(page)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    progress(f"wrote {out}")


def machine_lines() -> list[str]:
    """When, on what and by which command a page's figures were measured."""
    return [
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0))} usable by this process)",
        f"- Python {platform.python_version()}, numpy {np.__version__}, opencv "
        f"{cv2.__version__}, onnxruntime {version('onnxruntime')}, ai-edge-litert "
        f"{version('ai-edge-litert')}, Pillow {version('pillow')}",
        f"- Command: `{invoking_command()}`",
    ]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown CPU"


def invoking_command() -> str:
    command = shlex.join(sys.argv)
    return f"uv run python {command}" if "UV" in os.environ else shlex.join(sys.orig_argv)


def display_path(path: Path) -> str:
    return os.path.relpath(path.resolve(), REPO_ROOT)
