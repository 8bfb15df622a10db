"""Measure blurcore's video pipeline and the deface tool side by side on the shared clips.

Every tool paints faces black on every clip of the video set and is scored by that set's protocol
(``blurcore.video.evaluation``). Writes docs/video-benchmarks.md (overwritten each run) and prints
the same page. Without the video set, says so and exits 0 without writing. A full run takes
about half an hour on two cores, most of it deface's.

    uv run python -m bench.video_bench [--dataset DIR] [--out FILE] [--memory-minutes 10]
        [--profiles fast default thorough] [--clips dev01 dev04 ...] [--limit N]
"""

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from statistics import mean

from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer
from blurcore.video.evaluation import (
    REAL_TIME_FPS,
    VideoClip,
    VideoEvaluation,
    describe_run,
    evaluate_video_clips,
    evaluate_video_dataset,
    format_video_report,
    load_clips,
    share,
)
from blurcore.video.scoring import VIDEO_REPORT_BUCKETS, UnprotectedRun

from .deface import deface_environment
from .page import Check, checks_table, fill, machine_header, markdown_table
from .runner import DOCS, SHARED_FACES, display_path, progress, run_page
from .video_memory import memory_section

QUALITY_CHECKED = (Profile.DEFAULT, Profile.THOROUGH)
THREADS = 2  # the benchmark machine's cores; deface's onnxruntime takes every core by default
DEFACE = "deface 1.5.0"

# The targets of the video issue.
MAX_UNPROTECTED_RUN_FRAMES = 2
DEFAULT_SPEEDUP_OVER_DEFACE = 2.0


@dataclass(frozen=True)
class ToolRun:
    name: str
    evaluation: VideoEvaluation
    profile: Profile | None = None  # blurcore's


def deface_command(uv: str, source: str, target: str) -> list[str]:
    """deface as its users run it on a video, painting black rectangles and keeping the sound."""
    return [
        *deface_environment(uv),
        "deface",
        source,
        "-o",
        target,
        "--keep-audio",
        "--replacewith",
        "solid",
    ]


def run_deface(uv: str, source: Path, target: Path) -> None:
    completed = subprocess.run(
        deface_command(uv, str(source), str(target)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"deface failed on {source}:\n{completed.stderr[-2000:]}")


def prepare_deface(uv: str) -> str:
    """Builds deface's environment before anything is timed; its version line."""
    command = [*deface_environment(uv), "deface", "--version"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def clip_progress(tool: str, clip: VideoClip) -> None:
    progress(f"{tool}: {clip.name} ({len(clip.frames)} frames)")


def measure_deface(clips: Sequence[VideoClip], uv: str) -> ToolRun:
    progress(f"{DEFACE}: environment ready (`deface --version`: {prepare_deface(uv)})")
    evaluation = evaluate_video_clips(
        clips, partial(run_deface, uv), partial(clip_progress, DEFACE)
    )
    return ToolRun(DEFACE, evaluation)


def measure_blurcore(dataset: Path, profile: Profile, clip_names: Sequence[str] | None) -> ToolRun:
    name = f"blurcore {profile.value}"
    # Models load on the first frame, so the first clip's time includes them, as a user's does.
    evaluation = evaluate_video_dataset(
        dataset,
        Anonymizer(threads=THREADS),
        AnonymizeParams(profile=profile),
        partial(clip_progress, name),
        clip_names,
    )
    return ToolRun(name, evaluation, profile)


# Checks against the targets


def buckets_above(ours: VideoEvaluation, theirs: VideoEvaluation) -> Check:
    """More face-frames protected than deface in every bucket that has face-frames; where deface
    protects them all, matching it is all that is possible."""
    ours_buckets, theirs_buckets = ours.score.buckets, theirs.score.buckets
    short = []
    compared = 0
    for label in VIDEO_REPORT_BUCKETS:
        mine, other = ours_buckets[label].protected_share, theirs_buckets[label].protected_share
        if mine is None or other is None:
            continue
        compared += 1
        if not (mine > other or mine == 1.0):
            short.append(f"{label} ({share(mine)} vs {share(other)})")
    return Check(
        "protected share above deface's, every bucket",
        f"short in {', '.join(short)}" if short else f"above in all {compared}",
        "above in every bucket",
        not short,
    )


def run_check(evaluation: VideoEvaluation) -> Check:
    run = evaluation.score.worst_run(without_heavily_occluded=True)
    frames = run.frames if run else 0
    return Check(
        "longest unprotected run, faces >= 32 px not heavily occluded",
        f"{frames} frames" + (f" ({run.clip}, track {run.track})" if run and frames else ""),
        f"<= {MAX_UNPROTECTED_RUN_FRAMES} frames",
        frames <= MAX_UNPROTECTED_RUN_FRAMES,
    )


def speed_check(default: VideoEvaluation, deface: VideoEvaluation) -> Check:
    ratio = speed_ratio(default, deface)
    return Check(
        "default frames/s / deface frames/s",
        f"{ratio:.2f}",
        f">= {DEFAULT_SPEEDUP_OVER_DEFACE:.0f}",
        ratio >= DEFAULT_SPEEDUP_OVER_DEFACE,
    )


def speed_ratio(ours: VideoEvaluation, theirs: VideoEvaluation) -> float:
    return ours.frames_per_second / theirs.frames_per_second if theirs.frames_per_second else 0.0


def target_checks(blurcore: Sequence[ToolRun], deface: ToolRun) -> list[Check]:
    """The quality targets for the profiles meant to protect every face (fast is MediaPipe on the
    whole frame, the classic recipe: its figures are shown, not held to them); speed for
    default."""
    checks = []
    for run in blurcore:
        if run.profile not in QUALITY_CHECKED:
            continue
        for check in (buckets_above(run.evaluation, deface.evaluation), run_check(run.evaluation)):
            checks.append(
                Check(f"{run.name}: {check.figure}", check.measured, check.target, check.met)
            )
    default = next((run for run in blurcore if run.profile is Profile.DEFAULT), None)
    if default is not None:
        checks.append(speed_check(default.evaluation, deface.evaluation))
    return checks


# The page


def bucket_table(runs: Sequence[ToolRun]) -> str:
    """Protected share per size bucket, one column per tool; face-frames are the same for every
    tool (measurability depends on the original alone), so they are shown once."""
    reference = runs[0].evaluation.score.buckets
    rows = [
        [
            label,
            str(reference[label].face_frames),
            str(reference[label].unmeasurable),
            *(share(run.evaluation.score.buckets[label].protected_share) for run in runs),
        ]
        for label in VIDEO_REPORT_BUCKETS
    ]
    header = ["longer side", "face-frames", "unmeasurable", *(run.name for run in runs)]
    return markdown_table(header, rows)


def run_table(runs: Sequence[ToolRun]) -> str:
    def cell(run: UnprotectedRun | None) -> str:
        return describe_run(run, with_clip=True)

    rows = [
        [
            run.name,
            cell(run.evaluation.score.worst_run()),
            cell(run.evaluation.score.worst_run(without_heavily_occluded=True)),
        ]
        for run in runs
    ]
    header = ["tool", "worst run (frames)", "worst run without heavily occluded tracks"]
    return markdown_table(header, rows)


def speed_table(runs: Sequence[ToolRun], deface: ToolRun) -> str:
    rows = []
    for run in runs:
        evaluation = run.evaluation
        real_time = evaluation.frames_per_second / REAL_TIME_FPS
        rows.append(
            [
                run.name,
                f"{evaluation.wall_seconds:.1f}",
                f"{evaluation.frames_per_second:.2f}",
                f"{speed_ratio(evaluation, deface.evaluation):.2f}",
                real_time_cell(real_time),
            ]
        )
    header = ["tool", "wall s", "frames/s", "x deface", f"x real time ({REAL_TIME_FPS:.0f} fps)"]
    return markdown_table(header, rows)


def real_time_cell(share_of_real_time: float) -> str:
    if share_of_real_time >= 1.0:
        return f"{share_of_real_time:.2f} (real time)"
    if share_of_real_time <= 0.0:
        return "-"
    return f"{share_of_real_time:.3f} ({1 / share_of_real_time:.1f}x slower than real time)"


def output_table(runs: Sequence[ToolRun]) -> str:
    rows = []
    for run in runs:
        clips = run.evaluation.clips

        def of_clips(count: int, total: int = len(clips)) -> str:
            return f"{count} of {total}"

        survived = run.evaluation.tags_survived
        rows.append(
            [
                run.name,
                of_clips(sum(clip.audio_kept for clip in clips)),
                of_clips(sum(not clip.tags_survived for clip in clips))
                + (f" ({', '.join(survived)} survived)" if survived else ""),
                of_clips(sum(not clip.frame_count_changed for clip in clips)),
                of_clips(sum(not clip.size_changed for clip in clips)),
                of_clips(sum(clip.transposed for clip in clips)),
                f"{mean(clip.score.anonymized_elsewhere for clip in clips):.2%}",
            ]
        )
    header = [
        "tool",
        "audio kept",
        "all tags stripped",
        "frame count kept",
        "size kept",
        "came out transposed",
        "frame anonymized outside the boxes (mean)",
    ]
    return markdown_table(header, rows)


def render_page(
    dataset: Path,
    clips: Sequence[VideoClip],
    blurcore: Sequence[ToolRun],
    deface: ToolRun,
    memory: str,
) -> str:
    """The page; ``memory`` is its memory section, or empty where that was not measured."""
    runs = [*blurcore, deface]
    defaults = AnonymizeParams()
    per_clip = [
        fill("video_per_clip", tool=run.name, report=format_video_report(run.evaluation))
        for run in runs
    ]
    return fill(
        "video_benchmarks",
        clips=str(len(clips)),
        frames=str(sum(len(clip.frames) for clip in clips)),
        dataset=display_path(dataset),
        shape=defaults.shape.value,
        padding=str(defaults.padding),
        threads=str(THREADS),
        deface_command=shlex.join(deface_command("uv", "CLIP", "OUT.mp4")),
        machine=machine_header(),
        buckets=bucket_table(runs),
        runs=run_table(runs),
        speed=speed_table(runs, deface),
        outputs=output_table(runs),
        checks=checks_table(target_checks(blurcore, deface)),
        per_clip="\n\n".join(per_clip),
        memory=memory,
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profiles",
        nargs="+",
        type=Profile,
        choices=list(Profile),
        default=list(Profile),
        metavar="PROFILE",
        help="blurcore profiles to measure (default: all)",
    )
    parser.add_argument(
        "--clips", nargs="+", metavar="NAME", help="only the clips whose file name starts so"
    )
    parser.add_argument(
        "--memory-minutes",
        type=float,
        default=10.0,
        help="also measure resident memory over a clip this long (0: skip)",
    )


def measure_page(args: argparse.Namespace, clips: list[VideoClip]) -> str:
    uv = os.environ.get("UV", str(Path.home() / ".local" / "bin" / "uv"))
    names = [clip.name for clip in clips]
    blurcore = [measure_blurcore(args.dataset, profile, names) for profile in args.profiles]
    deface = measure_deface(clips, uv)
    memory = memory_section(args.memory_minutes) if args.memory_minutes > 0 else ""
    return render_page(args.dataset, clips, blurcore, deface, memory)


def main(argv: Sequence[str] | None = None) -> int:
    return run_page(
        __doc__,
        out=DOCS / "video-benchmarks.md",
        dataset=SHARED_FACES / "video",
        load=lambda args: load_clips(args.dataset, args.clips),
        measure=measure_page,
        options=add_options,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
