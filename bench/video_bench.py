"""Measure blurcore's video pipeline and the deface tool side by side on the shared clips.

Every tool paints faces black on every clip of the video set and is scored by that set's protocol
(``blurcore.video.evaluation``). Writes docs/video-benchmarks.md (overwritten each run) and prints
the same page. Without the video set, says so and exits 0 without writing. A full run takes
about half an hour on two cores, most of it deface's.

    uv run python bench/video_bench.py [--dataset DIR] [--out FILE] [--memory-minutes 10]
        [--profiles fast default thorough] [--clips dev01 dev04 ...]
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

from page import (
    REPO_ROOT,
    Check,
    checks_table,
    display_path,
    machine_lines,
    markdown_table,
    progress,
    publish,
)
from run_benchmarks import deface_environment
from video_memory import memory_section

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

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "faces" / "video"
DEFAULT_OUT = REPO_ROOT / "docs" / "video-benchmarks.md"
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


def bucket_table(runs: Sequence[ToolRun]) -> list[str]:
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


def run_table(runs: Sequence[ToolRun]) -> list[str]:
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


def speed_table(runs: Sequence[ToolRun], deface: ToolRun) -> list[str]:
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


def output_table(runs: Sequence[ToolRun]) -> list[str]:
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
    dataset: Path, clips: Sequence[VideoClip], blurcore: Sequence[ToolRun], deface: ToolRun
) -> str:
    runs = [*blurcore, deface]
    frames = sum(len(clip.frames) for clip in clips)
    defaults = AnonymizeParams()
    shown_command = shlex.join(deface_command("uv", "CLIP", "OUT.mp4"))
    lines = [
        "# Video benchmarks",
        "",
        "Produced by `bench/video_bench.py`, which overwrites this page. Every tool anonymizes "
        f"the {len(clips)} clips ({frames} annotated frames) of `{display_path(dataset)}` in a "
        "fill mode that paints faces black, one after another in one run on the machine below, "
        "and is scored by that set's protocol (`blurcore.video.evaluation`; see the set's "
        "README): a face-frame is *protected* when >= 80 % of its measurable box is painted; "
        "a *run* is consecutive frames in which a face of >= 32 px was shown unprotected. "
        "frames/s = annotated frames / wall seconds, start-up included.",
        "",
        f"- blurcore: `VideoAnonymizer.process` per clip, each profile with `mode=fill` and "
        f"otherwise default parameters ({defaults.shape.value} regions, padding "
        f"{defaults.padding}), {THREADS} threads, one "
        "`Anonymizer` per profile (its models load during the first clip).",
        f"- deface: a fresh process per clip, as its users run it (`--replacewith solid` paints "
        f"black rectangles), onnxruntime's default threads: `{shown_command}`",
        "",
        *machine_lines(),
        "",
        "## Protected face-frames",
        "",
        *bucket_table(runs),
        "",
        "## Longest unprotected run",
        "",
        "Heavily occluded tracks are those WIDER marks `occlusion: heavy` (a face hidden behind "
        "a shoulder, say); the target leaves them out.",
        "",
        *run_table(runs),
        "",
        "## Speed",
        "",
        *speed_table(runs, deface),
        "",
        "## What the outputs kept",
        "",
        "Tags: `location`, `title`, `comment` and `creation_time`, stripped when no original "
        "value is left in the output. A transposed output (lost display rotation) is turned back "
        "before scoring, a resized one resized back.",
        "",
        *output_table(runs),
        "",
        "## Targets",
        "",
        *checks_table(target_checks(blurcore, deface)),
    ]
    for run in runs:
        lines += ["", f"## Per clip: {run.name}", "", format_video_report(run.evaluation)]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        clips = load_clips(args.dataset, args.clips)
    except FileNotFoundError:
        print(
            f"video bench: the video set {args.dataset} is absent (no annotations_video.json; "
            f"see ../shared/data/faces/video/README.md); nothing measured, {args.out} left as it "
            "was.",
            file=sys.stderr,
        )
        return 0
    uv = os.environ.get("UV", str(Path.home() / ".local" / "bin" / "uv"))
    blurcore = [measure_blurcore(args.dataset, profile, args.clips) for profile in args.profiles]
    deface = measure_deface(clips, uv)
    page = render_page(args.dataset, clips, blurcore, deface)
    if args.memory_minutes > 0:
        page += "\n## Memory\n\n" + memory_section(args.memory_minutes) + "\n"
    publish(page, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
