"""What every bench script does around its measurements: its options, its progress lines, its data
set (absent on many machines), and printing and writing the page."""

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from blurcore.evaluation import Sample, load_samples

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
SHARED_FACES = REPO_ROOT.parent / "shared" / "data" / "faces"
DEV_PHOTOS = SHARED_FACES / "dev"

Item = TypeVar("Item")


def run_page(
    description: str,
    out: Path,
    dataset: Path,
    load: Callable[[argparse.Namespace], Sequence[Item]],
    measure: Callable[[argparse.Namespace, list[Item]], str | None],
    options: Callable[[argparse.ArgumentParser], object] = lambda _parser: None,
    argv: Sequence[str] | None = None,
) -> int:
    """A bench script's main: parse the shared ``options`` and the script's own, ``load`` the
    data set's items (or say it is absent and stop), ``measure`` them into a page and publish it.

    ``measure`` returns None where it printed what was asked instead of a page.
    """
    parser = bench_options(description, out, dataset)
    options(parser)
    args = parser.parse_args(argv)
    items = load_or_explain(load, args)
    if items is None:
        return 0
    quiet_tensorflow_lite()
    page = measure(args, spread(items, args.limit))
    if page is not None:
        publish(page, args.out)
    return 0


def annotated_photos(args: argparse.Namespace) -> list[Sample]:
    """What the photo benchmarks measure on: every annotated photo of ``--dataset``."""
    return load_samples(args.dataset)


def bench_options(description: str, out: Path, dataset: Path | None) -> argparse.ArgumentParser:
    """``--out``, and for a script that measures on a data set ``--dataset`` and ``--limit``; each
    script adds its own options to the parser."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=out, help="write the page here (default: %(default)s)"
    )
    if dataset is not None:
        parser.add_argument(
            "--dataset", type=Path, default=dataset, help="the data set (default: %(default)s)"
        )
        parser.add_argument(
            "--limit",
            type=int,
            metavar="N",
            help="at most N of the set's items, spread over it: a quick check that the script "
            "runs, not figures to publish",
        )
    return parser


def spread(items: Sequence[Item], limit: int | None) -> list[Item]:
    """At most ``limit`` of ``items`` (all of them without a limit), evenly spaced: a data set
    lists its photos with faces before its negatives, and a short run should see both."""
    if limit is None or limit >= len(items):
        return list(items)
    return list(items[:: math.ceil(len(items) / max(limit, 1))])


def load_or_explain(
    load: Callable[[argparse.Namespace], Sequence[Item]], args: argparse.Namespace
) -> Sequence[Item] | None:
    """``load(args)``, or None after saying that nothing will be measured: the shared data set
    is not on every machine, and its absence is no failure."""
    try:
        return load(args)
    except FileNotFoundError as absent:
        progress(
            f"the data set is absent ({absent}; see {display_path(SHARED_FACES)}/README.md); "
            f"nothing measured, {args.out} left as it was"
        )
        return None


def quiet_tensorflow_lite() -> None:
    """LiteRT prints from C++ to stderr as its models load; warnings and worse only, so that its
    lines do not bury the progress lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def publish(page: str, out: Path) -> None:
    """Print a finished page and write it over ``out``."""
    print(page)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page + "\n")
    progress(f"wrote {out}")


def publish_section(section: str, out: Path, name: str) -> None:
    """Print a section and write it into ``out`` between its start and end comments, replacing
    the previous run's; the rest of the page is written by hand."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    print(section)
    text = out.read_text() if out.exists() else ""
    marked = f"{start}\n{section}\n{end}"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + marked + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + marked + "\n"
    out.write_text(text)
    progress(f"wrote the {name} section of {out}")


def display_path(path: Path) -> str:
    """How a page names a file: relative to the repository, as a reader's checkout has it."""
    return os.path.relpath(path.resolve(), REPO_ROOT)
