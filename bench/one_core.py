"""Section 2 of docs/benchmarks.md: the fast profile on one pinned core, against OpenCV decoding and
encoding the same files."""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer

from .page import Check, checks_table, fill, markdown_table
from .rounds import Payload, read_payloads, time_rounds
from .runner import progress
from .speed import SPEED_HEADER, Speed, Timings, speed_row

PINNED_CORE = 0


ONE_CORE_TARGET_IMAGES_PER_SECOND = 25.0


ONE_CORE_TARGET_CODEC_RATIO = 3.0


OPENCV_DEFAULT_PNG_LEVEL = 1  # blurcore writes PNG at this level too


@dataclass(frozen=True)
class OneCoreSpeed:
    pipeline: Speed
    codec: Speed

    @property
    def ratio(self) -> float:
        return self.pipeline.median_round_seconds / self.codec.median_round_seconds


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
