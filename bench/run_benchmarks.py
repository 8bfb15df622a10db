"""Measure blurcore's quality and speed, the deface tool's, and the service's, in one run.

Writes docs/benchmarks.md (overwritten each run) and prints the same page. Needs the shared
evaluation set (../shared/data/faces/dev); without it, says so and exits 0 without writing.
``--only service`` measures the service section alone and prints it, writing nothing.

    uv run python -m bench.run_benchmarks [--dataset DIR] [--out FILE] [--rounds N]
        [--only service] [--limit N]
"""

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from blurcore.evaluation import Sample, load_samples
from blurcore.params import Profile

from .one_core import OneCoreSpeed, measure_one_core, one_core_section
from .padding_sweep import Geometry, padding_section, sweep
from .page import fill, machine_header
from .quality import ProfileQuality, measure_quality, quality_section
from .runner import DEV_PHOTOS, DOCS, annotated_photos, display_path, progress, run_page, spread
from .service_bench import SERVICE_ROUNDS, ServiceFigures, measure_service, service_section
from .speed import Speed
from .versus_deface import DefaceRun, deface_section, measure_deface, measure_default_speed

DEFAULT_ROUNDS = 5


@dataclass(frozen=True)
class Measured:
    """Everything the page shows, measured in one run."""

    dataset: Path
    rounds: int
    qualities: list[ProfileQuality]
    one_core: OneCoreSpeed
    default_speed: Speed
    deface: DefaceRun
    service: ServiceFigures
    geometry: list[Geometry]
    swept: list[Path]  # the data sets of the padding sweep


def render_page(measured: Measured) -> str:
    default_report = next(q.report for q in measured.qualities if q.profile is Profile.DEFAULT)
    deface_versions = measured.deface.versions
    return fill(
        "benchmarks",
        rounds=str(measured.rounds),
        service_rounds=str(SERVICE_ROUNDS),
        photos=str(measured.default_speed.images),
        dataset=display_path(measured.dataset),
        machine=machine_header(),
        deface_environment=", ".join(f"{name} {v}" for name, v in deface_versions.items()),
        quality=quality_section(measured.qualities),
        one_core=one_core_section(measured.one_core),
        versus_deface=deface_section(measured.default_speed, default_report, measured.deface),
        service=service_section(measured.service, display_path(measured.dataset)),
        padding=padding_section(measured.geometry, [display_path(p) for p in measured.swept]),
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--only", choices=["service"], help="measure and print one section")
    parser.add_argument(
        "--sweep-dataset",
        type=Path,
        action="append",
        default=[],
        help="more annotated sets for the padding sweep, beside --dataset (repeatable)",
    )


def measure_page(args: argparse.Namespace, samples: list[Sample]) -> str | None:
    paths = [sample.path for sample in samples]
    service = measure_service(paths)  # first: it fails fast when Redis cannot start
    if args.only == "service":
        print(service_section(service, display_path(args.dataset)))
        progress(f"--only service: {args.out} left as it was")
        return None
    swept = [args.dataset, *args.sweep_dataset]
    measured = Measured(
        dataset=args.dataset,
        rounds=args.rounds,
        qualities=[measure_quality(samples, profile) for profile in Profile],
        one_core=measure_one_core(paths, args.rounds),
        default_speed=measure_default_speed(paths, args.rounds),
        deface=measure_deface(samples, args.rounds),
        service=service,
        geometry=sweep([s for path in swept for s in spread(load_samples(path), args.limit)]),
        swept=swept,
    )
    return render_page(measured)


def main(argv: Sequence[str] | None = None) -> int:
    page = DOCS / "benchmarks.md"
    return run_page(__doc__, page, DEV_PHOTOS, annotated_photos, measure_page, add_options, argv)


if __name__ == "__main__":
    sys.exit(main())
