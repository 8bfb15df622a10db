"""Measure blurcore's quality and speed, the deface tool's, and the service's, in one run.

Writes docs/benchmarks.md (overwritten each run) and prints the same page. Needs the shared
evaluation set (../shared/data/faces/dev); without it, says so and exits 0 without writing.
``--only service`` measures the service section alone and prints it, writing nothing.

    uv run python bench/run_benchmarks.py [--dataset DIR] [--out FILE] [--rounds N]
        [--only service]
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
from padding_sweep import Geometry, padding_section, sweep
from page import (
    DEFAULT_DATASET,
    REPO_ROOT,
    Check,
    checks_table,
    display_path,
    machine_lines,
    markdown_table,
    progress,
    publish,
)
from rounds import Payload, read_payloads, time_rounds
from service_bench import SERVICE_ROUNDS, ServiceFigures, measure_service, service_section

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

DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
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
DEFACE_HELPER = Path(__file__).resolve().with_name("deface_timing.py")

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


def deface_command(uv: str, helper: str, rounds: int, masks: str, files: list[str]) -> list[str]:
    """deface's timing helper in deface's own environment."""
    return [
        *deface_environment(uv),
        "python",
        helper,
        "--rounds",
        str(rounds),
        "--masks",
        masks,
        *files,
    ]


def measure_deface(samples: list[Sample], rounds: int) -> DefaceRun:
    progress(f"versus deface: {DEFACE_REQUIREMENT}, onnxruntime default threads, {rounds} rounds")
    files = [str(sample.path) for sample in samples]
    with tempfile.TemporaryDirectory() as scratch:
        masks_file = Path(scratch) / "masks.npz"
        command = deface_command(
            os.environ.get("UV", "uv"), str(DEFACE_HELPER), rounds, str(masks_file), files
        )
        completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        with np.load(masks_file) as archive:
            masks = [archive[f"arr_{index}"] for index in range(len(samples))]
    result = json.loads(completed.stdout)
    speed = Speed(result["timings"])
    shown = deface_command("uv", display_path(DEFACE_HELPER), rounds, "MASKS.npz", ["FILE..."])
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


def deface_line(deface_versions: dict[str, str]) -> str:
    deface_env = ", ".join(f"{name} {number}" for name, number in deface_versions.items())
    return f"- deface's isolated environment: {deface_env}"


def quality_section(qualities: list[ProfileQuality]) -> list[str]:
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
    return [
        "## 1. Quality per profile",
        "",
        "The whole pipeline (`blurcore.evaluation.evaluate`: decode, detect, anonymize, encode) "
        "over every photo of the dev set, scored by the data set's protocol: *protected* = at "
        "least 80 % of the face box anonymized; *recall@0.5* = matched by a detection at IoU "
        f"0.5. `{LARGE_FACES}` joins the 64-128 and >=128 buckets. One pass without warm-up: its "
        "speed columns include each detector's first run on every new image size; sections 2 "
        "and 3 give the warmed, timed figures.",
        "",
        *bucket_table({quality.profile.value: quality.report for quality in qualities}),
        "",
        *markdown_table(
            [
                "profile",
                "threads",
                "negatives touched",
                "regions on negatives",
                "negative pixels anonymized",
                "images/s (cold pass)",
                "median ms/image (cold pass)",
            ],
            false_alarms,
        ),
        "",
        "The issue's targets for the default profile:",
        "",
        *checks_table(
            [
                check
                for quality in qualities
                if quality.profile is Profile.DEFAULT
                for check in issue_checks(quality)
            ]
        ),
        "",
        "Beside them, each profile against the reference system of "
        f"`../shared/data/faces/README.md` on this set: the fast profile against "
        f"{CLASSIC_RECIPE.name}; default and thorough against {DEFACE_REFERENCE.name}. These are "
        "comparisons, not targets of the issue.",
        "",
        *checks_table([check for quality in qualities for check in quality_checks(quality)]),
    ]


def bucket_table(reports: dict[str, Report]) -> list[str]:
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


def one_core_section(speed: OneCoreSpeed) -> list[str]:
    rows = [
        speed_row("fast profile: `Anonymizer.process`", speed.pipeline),
        speed_row("OpenCV `imdecode` + `imencode`", speed.codec),
    ]
    return [
        "## 2. Fast profile on one core",
        "",
        f"A child process pinned to core {PINNED_CORE} (`os.sched_setaffinity`, every thread), "
        "detector threads 1, OpenCV threads 1. Files are read into memory first; each image "
        "is timed from bytes to bytes: decode, detect, blur, encode. Beside it, in the same "
        "child, OpenCV decodes (`IMREAD_COLOR`) and re-encodes the same files in their format: "
        f"JPEG quality 90 (blurcore's default) and PNG at OpenCV's default zlib level "
        f"{OPENCV_DEFAULT_PNG_LEVEL}, which blurcore also writes. The ratio is of median round "
        "times.",
        "",
        *markdown_table(SPEED_HEADER, rows),
        "",
        *checks_table(one_core_checks(speed)),
    ]


def deface_section(ours: Speed, ours_report: Report, deface: DefaceRun) -> list[str]:
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
    return [
        "## 3. Default profile against deface",
        "",
        f"The same {ours.images} photos, both cores, right after one another in this run. "
        "blurcore: `Anonymizer.process` from bytes to bytes. deface: decode with imageio, "
        "CenterFace at threshold 0.2, `anonymize_frame` (blurred ellipses 1.3 times the boxes), "
        "encode with imageio (JPEG quality 90), from bytes to bytes, in its own environment:",
        "",
        f"`{deface.command}`",
        "",
        "deface's quality is its raw boxes and the pixels it blurs, scored by the same protocol "
        "(blurcore's quality is the default profile of section 1). The data set's README reports "
        f"deface at {percent(DEFACE_REFERENCE.protected_all)} protected "
        f"({percent(DEFACE_REFERENCE.protected_resolvable)} >= 16 px).",
        "",
        *markdown_table(header, rows),
        "",
        *bucket_table({"default": ours_report, "deface": deface.report}),
        "",
        *checks_table(deface_checks(ours, deface)),
    ]


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


def render_page(
    dataset: Path,
    rounds: int,
    qualities: list[ProfileQuality],
    one_core: OneCoreSpeed,
    default_speed: Speed,
    deface: DefaceRun,
    service: ServiceFigures,
    geometry: tuple[list[Geometry], list[Path]],
) -> str:
    default_report = next(q.report for q in qualities if q.profile is Profile.DEFAULT)
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`bench/run_benchmarks.py`), which overwrites this page. Speed "
        f"figures are medians of {rounds} timed rounds ({SERVICE_ROUNDS} in section 4; after "
        f"one untimed warm-up round) over the {default_speed.images} photos of "
        f"`{display_path(dataset)}` (`images/` + `negatives/`), all measured side by side in "
        "one run on the machine below. images/s = photos / median round time.",
        "",
        *machine_lines(),
        deface_line(deface.versions),
        "",
        *quality_section(qualities),
        "",
        *one_core_section(one_core),
        "",
        *deface_section(default_speed, default_report, deface),
        "",
        *service_section(service, display_path(dataset)),
        "",
        *padding_section(geometry[0], [display_path(path) for path in geometry[1]]),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--only", choices=["service"], help="measure and print one section")
    parser.add_argument(
        "--sweep-dataset",
        type=Path,
        action="append",
        default=[],
        help="more annotated sets for the padding sweep, beside --dataset (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        samples = load_samples(args.dataset)
    except FileNotFoundError:
        print(
            f"bench: the evaluation set {args.dataset} is absent (no annotations.json or "
            "negatives.json there; see ../shared/data/faces/README.md); nothing measured, "
            f"{args.out} left as it was.",
            file=sys.stderr,
        )
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = [sample.path for sample in samples]
    service = measure_service(paths)  # first: it fails fast when Redis cannot start
    if args.only == "service":
        print("\n".join(service_section(service, display_path(args.dataset))))
        progress(f"--only service: {args.out} left as it was")
        return 0
    qualities = [measure_quality(samples, profile) for profile in Profile]
    one_core = measure_one_core(paths, args.rounds)
    default_speed = measure_default_speed(paths, args.rounds)
    deface = measure_deface(samples, args.rounds)
    swept = [args.dataset, *args.sweep_dataset]
    geometry = sweep([sample for path in swept for sample in load_samples(path)])
    page = render_page(
        args.dataset,
        args.rounds,
        qualities,
        one_core,
        default_speed,
        deface,
        service,
        (geometry, swept),
    )
    publish(page, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
