"""Section 3 of docs/benchmarks.md: the default profile against deface, same photos, same cores."""

import json
import os
import shlex
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blurcore.evaluation import Sample
from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer
from blurcore.scoring import Report, score_image, summarize

from .deface import DEFACE_REQUIREMENT, deface_environment
from .page import Check, checks_table, fill, markdown_table
from .quality import DEFACE_REFERENCE, TWO_CORES, bucket_table, percent, quality_cells
from .rounds import read_payloads, time_rounds
from .runner import REPO_ROOT, progress
from .speed import SPEED_HEADER, Speed, speed_row

DEFACE_TIMING_MODULE = "bench.deface_timing"  # run from the repository root


@dataclass(frozen=True)
class DefaceRun:
    speed: Speed
    report: Report
    versions: dict[str, str]
    command: str


def measure_default_speed(paths: list[Path], rounds: int) -> Speed:
    progress(f"versus deface: default profile, {TWO_CORES} threads, {rounds} rounds")
    params = AnonymizeParams(profile=Profile.DEFAULT)
    anonymizer = Anonymizer(threads=TWO_CORES)
    anonymizer.load((Profile.DEFAULT,))
    payloads = read_payloads(paths)
    _, timings = time_rounds(lambda p: anonymizer.process(p[1], params), payloads, rounds)
    return Speed(timings)


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
