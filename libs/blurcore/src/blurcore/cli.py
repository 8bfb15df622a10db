"""The ``blurcore`` command line: blur, detect and eval, with no server involved.

Only results go to stdout (``detect --json``, the ``eval`` table); progress and logs go to stderr.
"""

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Never

from pydantic import ValidationError
from tqdm import tqdm

from blurcore import imageio
from blurcore.batch import BatchReport, blur_inputs
from blurcore.boxes import to_xywh
from blurcore.errors import BlurcoreError
from blurcore.evaluation import evaluate, load_samples
from blurcore.params import AnonymizeParams, Mode, Profile, Shape
from blurcore.pipeline import Anonymizer
from blurcore.scoring import format_report, report_to_dict
from blurcore.video.evaluation import ANNOTATIONS_FILE as VIDEO_ANNOTATIONS
from blurcore.video.evaluation import evaluate_video_dataset, format_video_report
from blurcore.video.pipeline import AudioPolicy, VideoAnonymizer, VideoOptions
from blurcore.video.probe import DEFAULT_MAX_SECONDS, VideoLimits, looks_like_video

log = logging.getLogger("blurcore")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _add_params_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = AnonymizeParams()
    group = parser.add_argument_group("anonymization parameters (defaults in blurcore.params)")
    group.add_argument("--profile", choices=[p.value for p in Profile], default=defaults.profile)
    group.add_argument("--mode", choices=[m.value for m in Mode], default=defaults.mode)
    group.add_argument("--shape", choices=[s.value for s in Shape], default=defaults.shape)
    group.add_argument("--padding", type=float, default=defaults.padding)
    group.add_argument("--strength", type=float, default=defaults.strength)
    group.add_argument(
        "--outline", action="store_true", help="draw a green review box around each region"
    )
    group.add_argument("--mediapipe-confidence", type=float, default=defaults.mediapipe_confidence)
    group.add_argument(
        "--centerface-confidence", type=float, default=defaults.centerface_confidence
    )
    group.add_argument("--nms-iou", type=float, default=defaults.nms_iou)
    group.add_argument("--denoise", action="store_true", help="denoise before detecting")
    group.add_argument("--max-detection-side", type=int, default=defaults.max_detection_side)
    group.add_argument("--jpeg-quality", type=int, default=defaults.jpeg_quality)
    video = parser.add_argument_group("videos")
    video.add_argument(
        "--audio",
        choices=[a.value for a in AudioPolicy],
        default=AudioPolicy.KEEP.value,
        help="copy every audio stream unchanged (keep) or write none (mute)",
    )
    video.add_argument(
        "--max-video-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="refuse longer videos before decoding them",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for detection and image operations (default: all cores)",
    )


def _video_options_from(args: argparse.Namespace) -> VideoOptions:
    return VideoOptions(
        audio=AudioPolicy(args.audio), limits=VideoLimits(max_seconds=args.max_video_seconds)
    )


def _params_from(args: argparse.Namespace) -> AnonymizeParams:
    fields = AnonymizeParams.model_fields
    return AnonymizeParams(**{name: getattr(args, name) for name in fields})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blurcore", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True)

    blur = commands.add_parser("blur", help="anonymize photos, videos, folders and ZIP files")
    blur.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    blur.add_argument("--out", type=Path, required=True, help="output folder")
    blur.add_argument("--report", type=Path, help="write a JSON report of every image here")
    _add_params_arguments(blur)

    detect = commands.add_parser("detect", help="print the regions blur would anonymize")
    # Kept as typed (not as Path, which drops "./"), since the output is keyed by it.
    detect.add_argument("images", nargs="+", metavar="IMAGE_OR_VIDEO")
    detect.add_argument("--json", action="store_true", required=True, help="JSON on stdout")
    _add_params_arguments(detect)

    evaluate_ = commands.add_parser(
        "eval", help="score a profile on an annotated set of photos or videos"
    )
    evaluate_.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    evaluate_.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    _add_params_arguments(evaluate_)
    return parser


class FramesBar:
    """One progress bar per stage of each video, in frames, with the rate and the time left."""

    def __init__(self) -> None:
        self.bar: tqdm[Never] | None = None
        self.stage = ""

    def update(self, stage: str, done: int, total: int) -> None:
        if self.bar is None or stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(
                desc=f"  {stage}", total=total or None, unit="frame", file=sys.stderr, disable=None
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "FramesBar":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _run_blur(args: argparse.Namespace, params: AnonymizeParams) -> int:
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)  # fail before the work, not after
    anonymizer = Anonymizer(threads=args.threads)
    anonymizer.load((params.profile,))
    files = tqdm(desc="files", unit="file", file=sys.stderr, disable=None)
    with files as bar, FramesBar() as frames:
        report: BatchReport = blur_inputs(
            args.inputs,
            args.out,
            anonymizer,
            params,
            bar.update,
            _video_options_from(args),
            frames.update,
        )
    if args.report:
        args.report.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    summary = report.summary()
    log.info("done: %s", ", ".join(f"{key} {value}" for key, value in summary.items()))
    return EXIT_SOME_FAILED if summary["failed"] else EXIT_OK


def _run_detect(args: argparse.Namespace, params: AnonymizeParams) -> int:
    anonymizer = Anonymizer(threads=args.threads)
    videos = VideoAnonymizer(anonymizer, _video_options_from(args))
    regions: dict[str, list[list[float]] | list[list[list[float]]]] = {}
    status = EXIT_OK
    for name in args.images:
        try:
            if looks_like_video(Path(name)):
                with FramesBar() as frames:
                    scan = videos.scan(Path(name), params, frames.update)
                regions[name] = [to_xywh(frame_regions) for frame_regions in scan.regions]
            else:
                image = imageio.decode(Path(name).read_bytes(), max_pixels=anonymizer.max_pixels)
                regions[name] = to_xywh(anonymizer.detect(image, params)[1])
        except (OSError, BlurcoreError) as error:
            log.error("%s: %s", name, error)
            status = EXIT_SOME_FAILED
    json.dump(regions, sys.stdout)
    sys.stdout.write("\n")
    return status


def _run_video_eval(args: argparse.Namespace, params: AnonymizeParams) -> int:
    anonymizer = Anonymizer(threads=args.threads)
    anonymizer.load((params.profile,))
    with tqdm(desc="eval", unit="clip", file=sys.stderr, disable=None) as bar:
        evaluation = evaluate_video_dataset(
            args.dataset, anonymizer, params, lambda _clip: bar.update(1)
        )
    print(f"profile {params.profile.value}, {len(evaluation.clips)} clips from {args.dataset}")
    print(format_video_report(evaluation))
    if args.json_out:
        figures = {"params": params.model_dump(mode="json"), **evaluation.to_dict()}
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return EXIT_OK


def _run_eval(args: argparse.Namespace, params: AnonymizeParams) -> int:
    if (args.dataset / VIDEO_ANNOTATIONS).is_file():
        return _run_video_eval(args, params)
    samples = load_samples(args.dataset)
    anonymizer = Anonymizer(threads=args.threads)
    anonymizer.load((params.profile,))
    with tqdm(total=len(samples), desc="eval", unit="img", file=sys.stderr, disable=None) as bar:
        report, _scores = evaluate(samples, anonymizer, params, lambda _sample: bar.update(1))
    print(f"profile {params.profile.value}, {len(samples)} images from {args.dataset}")
    print(format_report(report))
    if args.json_out:
        figures = {"params": params.model_dump(mode="json"), **report_to_dict(report)}
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # LiteRT and onnxruntime print from C++ to stderr at load; keep them to warnings and worse.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        params = _params_from(args)
    except ValidationError as error:
        print(f"blurcore: invalid parameters:\n{error}", file=sys.stderr)
        return EXIT_USAGE
    runners = {"blur": _run_blur, "detect": _run_detect, "eval": _run_eval}
    try:
        return runners[args.command](args, params)
    except FileNotFoundError as error:
        print(f"blurcore: {error}", file=sys.stderr)
        return EXIT_USAGE
