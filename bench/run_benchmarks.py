"""Measure blurcore's quality and speed, the deface tool's, and the service's, in one run.

Writes docs/benchmarks.md (overwritten each run) and prints the same page. Needs the shared
evaluation set (../shared/data/faces/dev); without it, says so and exits 0 without writing.
``--only service`` measures the service section alone and prints it, writing nothing.

    uv run python -m bench.run_benchmarks [--dataset DIR] [--out FILE] [--rounds N]
        [--only service] [--limit N]
"""

import argparse
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

from blurcore.evaluation import Sample, evaluate, load_samples
from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer
from blurcore.scoring import (
    ALL_FACES,
    REPORT_BUCKETS,
    RESOLVABLE_FACES,
    BucketFigures,
    Report,
    score_image,
    summarize,
)

from .padding_sweep import Geometry, padding_section, sweep
from .page import Check, checks_table, fill, machine_header, markdown_table
from .rounds import Payload, read_payloads, time_rounds
from .runner import (
    DEV_PHOTOS,
    DOCS,
    REPO_ROOT,
    annotated_photos,
    display_path,
    progress,
    run_page,
    spread,
)
from .service_bench import SERVICE_ROUNDS, ServiceFigures, measure_service, service_section

DEFAULT_ROUNDS = 5

TWO_CORES = 2
THREADS = {Profile.FAST: 1, Profile.DEFAULT: TWO_CORES, Profile.THOROUGH: TWO_CORES}
PINNED_CORE = 0
LARGE_FACES = ">=64"
LARGE_FACE_BUCKETS = ("64-128", ">=128")
TABLE_BUCKETS = (*REPORT_BUCKETS[:-1], LARGE_FACES, ALL_FACES)

ONE_CORE_TARGET_IMAGES_PER_SECOND = 25.0
ONE_CORE_TARGET_CODEC_RATIO = 3.0
OPENCV_DEFAULT_PNG_LEVEL = 1  # blurcore writes PNG at this level too

DEFACE_REQUIREMENT = "deface==1.5.0"
DEFACE_TIMING_MODULE = "bench.deface_timing"  # run from the repository root

SPEED_HEADER = ["measurement", "median round (s)", "images/s", "median ms/image"]


@dataclass(frozen=True)
class Reference:
    """A system measured on the same dev set, as ../shared/data/faces/README.md reports it."""

    name: str
    protected_all: float
    protected_resolvable: float
    negatives_touched: int


CLASSIC_RECIPE = Reference(
    "MediaPipe full-range on the whole image (the classic recipe)", 0.079, 0.117, 1
)
DEFACE_REFERENCE = Reference("deface: CenterFace, threshold 0.2, boxes x1.3", 0.728, 0.81, 5)
QUALITY_BAR = {
    Profile.FAST: CLASSIC_RECIPE,
    Profile.DEFAULT: DEFACE_REFERENCE,
    Profile.THOROUGH: DEFACE_REFERENCE,
}


Timings = list[list[float]]
"""Seconds per image per timed round: ``timings[round][image]``."""


@dataclass(frozen=True)
class Speed:
    """Timed rounds over the same images."""

    timings: Timings

    @property
    def images(self) -> int:
        return len(self.timings[0])

    @property
    def median_round_seconds(self) -> float:
        return statistics.median(sum(round_) for round_ in self.timings)

    @property
    def images_per_second(self) -> float:
        return self.images / self.median_round_seconds

    @property
    def median_image_ms(self) -> float:
        return statistics.median(s for round_ in self.timings for s in round_) * 1000


@dataclass(frozen=True)
class ProfileQuality:
    profile: Profile
    threads: int
    report: Report


@dataclass(frozen=True)
class OneCoreSpeed:
    pipeline: Speed
    codec: Speed

    @property
    def ratio(self) -> float:
        return self.pipeline.median_round_seconds / self.codec.median_round_seconds


@dataclass(frozen=True)
class DefaceRun:
    speed: Speed
    report: Report
    versions: dict[str, str]
    command: str


# Section 1: quality per profile


def measure_quality(samples: list[Sample], profile: Profile) -> ProfileQuality:
    progress(f"quality: profile {profile.value}, {THREADS[profile]} thread(s)")
    anonymizer = Anonymizer(threads=THREADS[profile])
    anonymizer.load((profile,))
    report, _scores = evaluate(samples, anonymizer, AnonymizeParams(profile=profile))
    return ProfileQuality(profile, THREADS[profile], report)


def bucket(report: Report, label: str) -> BucketFigures:
    if label != LARGE_FACES:
        return report.buckets[label]
    parts = [report.buckets[name] for name in LARGE_FACE_BUCKETS]
    return BucketFigures(
        faces=sum(part.faces for part in parts),
        protected=sum(part.protected for part in parts),
        detected=sum(part.detected for part in parts),
    )


def quality_checks(quality: ProfileQuality) -> list[Check]:
    report, bar = quality.report, QUALITY_BAR[quality.profile]
    protected_all = bucket(report, ALL_FACES).protected_rate or 0.0
    protected_resolvable = bucket(report, RESOLVABLE_FACES).protected_rate or 0.0
    name = quality.profile.value
    return [
        Check(
            f"{name}: protected, all faces",
            percent(protected_all),
            f">= {percent(bar.protected_all)}",
            protected_all >= bar.protected_all,
        ),
        Check(
            f"{name}: protected, faces >= 16 px",
            percent(protected_resolvable),
            f">= {percent(bar.protected_resolvable)}",
            protected_resolvable >= bar.protected_resolvable,
        ),
        Check(
            f"{name}: negatives touched",
            f"{report.negatives_touched} of {report.negatives}",
            f"<= {bar.negatives_touched}",
            report.negatives_touched <= bar.negatives_touched,
        ),
    ]


# The targets the issue sets for the default profile (issue 2 of the tracker).
ISSUE_PROTECTED_RESOLVABLE = 0.90
ISSUE_PROTECTED_LARGE = 0.97
ISSUE_NEGATIVES_TOUCHED = 5
ISSUE_NEGATIVE_PIXEL_SHARE = 0.02


def issue_checks(default: ProfileQuality) -> list[Check]:
    report = default.report
    resolvable = bucket(report, RESOLVABLE_FACES).protected_rate or 0.0
    large = bucket(report, LARGE_FACES).protected_rate or 0.0
    return [
        Check(
            "default: protected, faces >= 16 px",
            percent(resolvable),
            f">= {percent(ISSUE_PROTECTED_RESOLVABLE)}",
            resolvable >= ISSUE_PROTECTED_RESOLVABLE,
        ),
        Check(
            "default: protected, faces >= 64 px",
            percent(large),
            f">= {percent(ISSUE_PROTECTED_LARGE)}",
            large >= ISSUE_PROTECTED_LARGE,
        ),
        Check(
            "default: negatives touched",
            f"{report.negatives_touched} of {report.negatives}",
            f"<= {ISSUE_NEGATIVES_TOUCHED}",
            report.negatives_touched <= ISSUE_NEGATIVES_TOUCHED,
        ),
        Check(
            "default: share of negative pixels anonymized",
            percent(report.negative_pixel_share),
            f"< {percent(ISSUE_NEGATIVE_PIXEL_SHARE)}",
            report.negative_pixel_share < ISSUE_NEGATIVE_PIXEL_SHARE,
        ),
    ]


# Section 2: the fast profile on one core, against OpenCV decode + encode


def time_fast_on_one_core(paths: list[Path], rounds: int) -> tuple[Timings, Timings]:
    """Runs in a child process, so that pinning it leaves the parent free.

    Returns the timings of the pipeline, then of OpenCV decode + encode.
    """
    pin_process_to_core(PINNED_CORE)
    cv2.setNumThreads(1)  # what OpenCV would choose on a one-core machine
    payloads = read_payloads(paths)
    params = AnonymizeParams(profile=Profile.FAST)
    anonymizer = Anonymizer(threads=1)
    anonymizer.load((Profile.FAST,))
    _, pipeline = time_rounds(lambda p: anonymizer.process(p[1], params), payloads, rounds)
    _, codec = time_rounds(
        partial(decode_and_reencode, jpeg_quality=params.jpeg_quality), payloads, rounds
    )
    return pipeline, codec


def pin_process_to_core(core: int) -> None:
    """Pin every thread, not only the calling one: numpy and OpenCV start threads at import."""
    for thread in Path("/proc/self/task").iterdir():
        os.sched_setaffinity(int(thread.name), {core})


def decode_and_reencode(payload: Payload, jpeg_quality: int) -> bytes:
    """The floor under any anonymizer: decode the file and encode it again in its format."""
    extension, data = payload
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise RuntimeError(f"OpenCV could not decode a {extension} image")
    options = (
        [cv2.IMWRITE_PNG_COMPRESSION, OPENCV_DEFAULT_PNG_LEVEL]
        if extension == ".png"
        else [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    )
    ok, encoded = cv2.imencode(extension, pixels, options)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {extension} image")
    return encoded.tobytes()


def measure_one_core(paths: list[Path], rounds: int) -> OneCoreSpeed:
    progress(f"one core: fast profile and OpenCV decode+encode, pinned to core {PINNED_CORE}")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
        timings = child.submit(time_fast_on_one_core, paths, rounds).result()
    return OneCoreSpeed(*(Speed(timing) for timing in timings))


def one_core_checks(speed: OneCoreSpeed) -> list[Check]:
    images_per_second = speed.pipeline.images_per_second
    return [
        Check(
            "fast profile, whole pipeline, 1 core",
            f"{images_per_second:.1f} images/s",
            f">= {ONE_CORE_TARGET_IMAGES_PER_SECOND:.0f} images/s",
            images_per_second >= ONE_CORE_TARGET_IMAGES_PER_SECOND,
        ),
        Check(
            "pipeline time / OpenCV decode+encode time",
            f"{speed.ratio:.2f}",
            f"<= {ONE_CORE_TARGET_CODEC_RATIO:.0f}",
            speed.ratio <= ONE_CORE_TARGET_CODEC_RATIO,
        ),
    ]


# Section 3: the default profile against deface


def measure_default_speed(paths: list[Path], rounds: int) -> Speed:
    progress(f"versus deface: default profile, {TWO_CORES} threads, {rounds} rounds")
    params = AnonymizeParams(profile=Profile.DEFAULT)
    anonymizer = Anonymizer(threads=TWO_CORES)
    anonymizer.load((Profile.DEFAULT,))
    payloads = read_payloads(paths)
    _, timings = time_rounds(lambda p: anonymizer.process(p[1], params), payloads, rounds)
    return Speed(timings)


def deface_environment(uv: str) -> list[str]:
    """A throwaway environment for deface, holding our onnxruntime version so that both tools
    run the same inference runtime."""
    return [
        uv,
        "run",
        "--isolated",
        "--no-project",
        "--with",
        DEFACE_REQUIREMENT,
        "--with",
        f"onnxruntime=={version('onnxruntime')}",
        "--with",
        "onnx",
    ]


def deface_command(uv: str, rounds: int, masks: str, files: list[str]) -> list[str]:
    """deface's timing helper in deface's own environment."""
    return [
        *deface_environment(uv),
        "python",
        "-m",
        DEFACE_TIMING_MODULE,
        "--rounds",
        str(rounds),
        "--masks",
        masks,
        *files,
    ]


def measure_deface(samples: list[Sample], rounds: int) -> DefaceRun:
    progress(f"versus deface: {DEFACE_REQUIREMENT}, onnxruntime default threads, {rounds} rounds")
    files = [str(sample.path.resolve()) for sample in samples]
    with tempfile.TemporaryDirectory() as scratch:
        masks_file = Path(scratch) / "masks.npz"
        command = deface_command(os.environ.get("UV", "uv"), rounds, str(masks_file), files)
        completed = subprocess.run(
            command, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
        )
        with np.load(masks_file) as archive:
            masks = [archive[f"arr_{index}"] for index in range(len(samples))]
    result = json.loads(completed.stdout)
    speed = Speed(result["timings"])
    shown = deface_command("uv", rounds, "MASKS.npz", ["FILE..."])
    return DefaceRun(
        speed=speed,
        report=score_deface(samples, result["detections"], masks, speed),
        versions=result["versions"],
        command=shlex.join(shown),
    )


def score_deface(
    samples: list[Sample],
    detections: list[list[list[float]]],
    masks: list[np.ndarray],
    speed: Speed,
) -> Report:
    """deface's raw boxes and blurred pixels, scored by the same protocol as blurcore."""
    seconds_per_image = [statistics.median(times) for times in zip(*speed.timings, strict=True)]
    return summarize(
        [
            score_image(
                file=str(sample.path),
                faces=sample.faces,
                ignore=sample.ignore,
                dont_care=sample.dont_care,
                detections=np.asarray(boxes, dtype=np.float32).reshape(-1, 5),
                anonymized=mask,
                seconds=seconds,
                is_negative=sample.is_negative,
            )
            for sample, boxes, mask, seconds in zip(
                samples, detections, masks, seconds_per_image, strict=True
            )
        ]
    )


def deface_checks(ours: Speed, deface: DefaceRun) -> list[Check]:
    """The issue's target: at least as fast as deface on the same photos and cores. Quality is
    compared in the table above; the issue's quality targets are in section 1."""
    speed_ratio = ours.images_per_second / deface.speed.images_per_second
    return [
        Check(
            "default images/s / deface images/s",
            f"{speed_ratio:.2f}",
            ">= 1",
            speed_ratio >= 1.0,
        )
    ]


# The page


def quality_section(qualities: list[ProfileQuality]) -> str:
    false_alarms = [
        [
            quality.profile.value,
            str(quality.threads),
            f"{quality.report.negatives_touched} of {quality.report.negatives}",
            str(quality.report.negative_regions),
            f"{quality.report.negative_pixel_share:.2%} "
            f"(max {quality.report.negative_max_pixel_share:.2%})",
            f"{quality.report.images_per_second:.1f}",
            f"{quality.report.median_ms:.0f}",
        ]
        for quality in qualities
    ]
    false_alarm_header = [
        "profile",
        "threads",
        "negatives touched",
        "regions on negatives",
        "negative pixels anonymized",
        "images/s (cold pass)",
        "median ms/image (cold pass)",
    ]
    issue = [
        check
        for quality in qualities
        if quality.profile is Profile.DEFAULT
        for check in issue_checks(quality)
    ]
    return fill(
        "quality",
        large_faces=LARGE_FACES,
        buckets=bucket_table({quality.profile.value: quality.report for quality in qualities}),
        false_alarms=markdown_table(false_alarm_header, false_alarms),
        issue_checks=checks_table(issue),
        classic_recipe=CLASSIC_RECIPE.name,
        deface_reference=DEFACE_REFERENCE.name,
        reference_checks=checks_table(
            [check for quality in qualities for check in quality_checks(quality)]
        ),
    )


def bucket_table(reports: dict[str, Report]) -> str:
    """Protected rate and recall per face size, one pair of columns per named report."""
    header = ["faces (longer side)", "faces"]
    for name in reports:
        header += [f"{name} protected", f"{name} recall@0.5"]
    rows = []
    for label in TABLE_BUCKETS:
        row = [label, str(bucket(next(iter(reports.values())), label).faces)]
        for report in reports.values():
            figures = bucket(report, label)
            row += [percent(figures.protected_rate), percent(figures.recall)]
        rows.append(row)
    return markdown_table(header, rows)


def one_core_section(speed: OneCoreSpeed) -> str:
    rows = [
        speed_row("fast profile: `Anonymizer.process`", speed.pipeline),
        speed_row("OpenCV `imdecode` + `imencode`", speed.codec),
    ]
    return fill(
        "one_core",
        core=str(PINNED_CORE),
        png_level=str(OPENCV_DEFAULT_PNG_LEVEL),
        speeds=markdown_table(SPEED_HEADER, rows),
        checks=checks_table(one_core_checks(speed)),
    )


def deface_section(ours: Speed, ours_report: Report, deface: DefaceRun) -> str:
    header = [
        *SPEED_HEADER,
        "protected (all)",
        "protected (>=16)",
        "recall@0.5 (all)",
        "negatives touched",
    ]
    rows = [
        [*speed_row(f"blurcore default, {TWO_CORES} threads", ours), *quality_cells(ours_report)],
        [
            *speed_row("deface 1.5.0, onnxruntime default threads", deface.speed),
            *quality_cells(deface.report),
        ],
    ]
    return fill(
        "versus_deface",
        photos=str(ours.images),
        command=deface.command,
        readme_protected_all=percent(DEFACE_REFERENCE.protected_all),
        readme_protected_resolvable=percent(DEFACE_REFERENCE.protected_resolvable),
        speed_and_quality=markdown_table(header, rows),
        buckets=bucket_table({"default": ours_report, "deface": deface.report}),
        checks=checks_table(deface_checks(ours, deface)),
    )


def speed_row(name: str, speed: Speed) -> list[str]:
    return [
        name,
        f"{speed.median_round_seconds:.2f}",
        f"{speed.images_per_second:.1f}",
        f"{speed.median_image_ms:.1f}",
    ]


def quality_cells(report: Report) -> list[str]:
    return [
        percent(bucket(report, ALL_FACES).protected_rate),
        percent(bucket(report, RESOLVABLE_FACES).protected_rate),
        percent(bucket(report, ALL_FACES).recall),
        f"{report.negatives_touched} of {report.negatives}",
    ]


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


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
