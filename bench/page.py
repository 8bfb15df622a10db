"""What every section of docs/benchmarks.md shares: tables, checks against targets, progress."""

import sys
from collections.abc import Sequence
from dataclasses import dataclass


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
