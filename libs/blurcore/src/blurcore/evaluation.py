"""Run a profile over an annotated data set and score it by the shared evaluation protocol.

The data set layout is that of ``../shared/data/faces/dev``: ``annotations.json`` for photos with
faces and ``negatives.json`` for photos without, both ``{"images": [{"file", "faces", "ignore"}]}``.
"""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blurcore.anonymize import region_mask
from blurcore.params import AnonymizeParams
from blurcore.pipeline import Anonymizer
from blurcore.scoring import ImageScore, Report, score_image, summarize

ANNOTATION_FILES = (("annotations.json", False), ("negatives.json", True))


@dataclass(frozen=True)
class Sample:
    path: Path
    faces: list[list[float]]
    ignore: list[list[float]]
    dont_care: list[list[float]]
    is_negative: bool


def load_samples(dataset: Path) -> list[Sample]:
    """Every annotated image of the data set; raises FileNotFoundError if neither file exists."""
    samples: list[Sample] = []
    present = [(dataset / name, negative) for name, negative in ANNOTATION_FILES]
    if not any(path.is_file() for path, _ in present):
        raise FileNotFoundError(f"{dataset} holds neither annotations.json nor negatives.json")
    for path, negative in present:
        if path.is_file():
            samples.extend(_samples_from(path, dataset, negative))
    return samples


def _samples_from(annotations: Path, dataset: Path, negative: bool) -> Iterator[Sample]:
    entries: list[dict[str, Any]] = json.loads(annotations.read_text())["images"]
    for entry in entries:
        yield Sample(
            path=dataset / entry["file"],
            faces=entry.get("faces", []),
            ignore=entry.get("ignore", []),
            dont_care=entry.get("dont_care", []),
            is_negative=negative,
        )


def evaluate(
    samples: list[Sample],
    anonymizer: Anonymizer,
    params: AnonymizeParams,
    progress: Callable[[Sample], object] = lambda _sample: None,
) -> tuple[Report, list[ImageScore]]:
    """Score every sample; the time counted is the whole pipeline (decode to encode), not I/O."""
    scores = []
    for sample in samples:
        data = sample.path.read_bytes()
        started = time.perf_counter()
        result = anonymizer.process(data, params)
        seconds = time.perf_counter() - started
        anonymized = region_mask(result.outlines, result.height, result.width, params.shape)
        scores.append(
            score_image(
                file=str(sample.path),
                faces=sample.faces,
                ignore=sample.ignore,
                dont_care=sample.dont_care,
                detections=result.detections,
                anonymized=anonymized,
                seconds=seconds,
                is_negative=sample.is_negative,
            )
        )
        progress(sample)
    return summarize(scores), scores
