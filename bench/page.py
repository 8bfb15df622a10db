"""Writing a benchmark page: the words come from ``templates/``, the figures and tables from Python.

A template is Markdown with ``string.Template`` placeholders (``$photos``); Python computes each
figure, formats it (rounding, units, tables) and fills the template with it.
"""

import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from string import Template

import cv2
import numpy as np

TEMPLATES = Path(__file__).resolve().with_name("templates")


class TemplateMismatchError(ValueError):
    """A template and the figures given to it disagree: a page would lose words or figures."""


def fill(template: str, **figures: str) -> str:
    """``templates/<template>.md`` with its placeholders replaced by ``figures``."""
    return fill_text((TEMPLATES / f"{template}.md").read_text(), figures, template)


def fill_text(text: str, figures: Mapping[str, str], name: str = "template") -> str:
    """``text`` with every placeholder replaced, without its final newline (a filled template is
    a part of a page, placed on lines of its own by the template around it).

    Raises TemplateMismatchError for a placeholder without a figure and for a figure without a
    placeholder (a misspelt name on either side), ValueError for a malformed placeholder.
    """
    template = Template(text)
    wanted = set(template.get_identifiers())
    missing, unused = sorted(wanted - figures.keys()), sorted(figures.keys() - wanted)
    if missing or unused:
        raise TemplateMismatchError(f"{name}: no figure for {missing}, no placeholder for {unused}")
    return template.substitute(figures).rstrip("\n")


@dataclass(frozen=True)
class Check:
    """A measured figure against its target."""

    figure: str
    measured: str
    target: str
    met: bool


def checks_table(checks: Sequence[Check]) -> str:
    return markdown_table(
        ["figure", "measured", "target", "met?"],
        [[c.figure, c.measured, c.target, met(c.met)] for c in checks],
    )


def met(condition: bool) -> str:
    """A missed target stands out in the rendered page."""
    return "yes" if condition else "**no**"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def machine_header() -> str:
    """When, on what and by which command a page's figures were measured."""
    return "\n".join(
        [
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores "
            f"({len(os.sched_getaffinity(0))} usable by this process)",
            f"- Python {platform.python_version()}, numpy {np.__version__}, opencv "
            f"{cv2.__version__}, onnxruntime {version('onnxruntime')}, ai-edge-litert "
            f"{version('ai-edge-litert')}, Pillow {version('pillow')}",
            f"- Command: `{invoking_command()}`",
        ]
    )


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown CPU"


def invoking_command() -> str:
    """The command line, interpreter and ``-m`` included. Under make (which sets UV) the
    interpreter is named as ``uv run python``, which works in any checkout, not only this one."""
    if "UV" in os.environ:
        return "uv run python " + shlex.join(sys.orig_argv[1:])
    return shlex.join(sys.orig_argv)
