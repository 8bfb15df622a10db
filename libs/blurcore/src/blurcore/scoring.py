"""Score face anonymization against ground truth, following the evaluation dataset's protocol.

Two views of every ground-truth face, each reported per size bucket of the face's longer side:

* privacy: a face is *protected* when at least 80 % of its box area was actually anonymized;
* detection: a face is *detected* when a detection matches it at IoU >= 0.5, detections taking
  faces greedily by falling score, one to one.

Ground-truth boxes are ``[x, y, w, h]`` in pixels (origin top-left); detections are the (N, 5)
float32 arrays of :mod:`blurcore.boxes`; the anonymized pixels are a boolean HxW mask.
"""

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from blurcore.boxes import Boxes, centres_inside, iou_matrix

SIZE_BUCKETS: tuple[str, ...] = ("<16", "16-32", "32-64", "64-128", ">=128")
# Lower edges of every bucket after the first: a face of exactly 16 px belongs to "16-32".
_BUCKET_LOWER_EDGES = (16.0, 32.0, 64.0, 128.0)
ALL_FACES = "all"
RESOLVABLE_FACES = ">=16"
REPORT_BUCKETS: tuple[str, ...] = (*SIZE_BUCKETS, RESOLVABLE_FACES, ALL_FACES)

PROTECTED_COVERAGE = 0.8
MATCH_IOU = 0.5
# Coverage is a ratio of float sums; without slack a face covered at exactly 80 % could round
# to 0.7999999 and be reported as leaked.
_COVERAGE_TOLERANCE = 1e-9

BoolArray = npt.NDArray[np.bool_]


def size_bucket(longer_side: float) -> str:
    return SIZE_BUCKETS[bisect.bisect_right(_BUCKET_LOWER_EDGES, longer_side)]


@dataclass(frozen=True)
class FaceOutcome:
    bucket: str
    protected: bool
    detected: bool  # matched by a detection at IoU >= 0.5


@dataclass(frozen=True)
class ImageScore:
    file: str
    faces: tuple[FaceOutcome, ...]
    false_alarm_regions: int
    anonymized_fraction: float
    pixels: int
    seconds: float
    is_negative: bool


def score_image(
    file: str,
    faces: list[list[float]],
    ignore: list[list[float]],
    dont_care: list[list[float]],
    detections: npt.NDArray[np.float32],
    anonymized: BoolArray,
    seconds: float,
    is_negative: bool,
) -> ImageScore:
    """Score one image; ``ignore`` faces are not faces at all, and absorb the detections they match.

    A detection whose centre lies in a ``dont_care`` region takes no part: it can neither detect a
    face nor be a false alarm.
    """
    counted = detections[~centres_inside(detections, _xywh_to_boxes(dont_care))]
    face_detected, detection_matched = _match_greedily(counted, _xywh_to_boxes(faces))
    on_ignored_face = _matches_any(counted, _xywh_to_boxes(ignore))
    outcomes = tuple(
        FaceOutcome(
            bucket=size_bucket(max(face[2], face[3])),
            protected=_anonymized_coverage(face, anonymized)
            >= PROTECTED_COVERAGE - _COVERAGE_TOLERANCE,
            detected=bool(detected),
        )
        for face, detected in zip(faces, face_detected, strict=True)
    )
    pixels = int(anonymized.size)
    return ImageScore(
        file=file,
        faces=outcomes,
        false_alarm_regions=int(np.count_nonzero(~detection_matched & ~on_ignored_face)),
        anonymized_fraction=float(np.count_nonzero(anonymized)) / pixels if pixels else 0.0,
        pixels=pixels,
        seconds=seconds,
        is_negative=is_negative,
    )


def _xywh_to_boxes(rows: list[list[float]]) -> Boxes:
    xywh = np.asarray(rows, dtype=np.float32).reshape(-1, 4)
    boxes = np.zeros((len(xywh), 5), dtype=np.float32)
    boxes[:, :2] = xywh[:, :2]
    boxes[:, 2:4] = xywh[:, :2] + xywh[:, 2:4]
    return boxes


def _matches_any(detections: Boxes, regions: Boxes) -> BoolArray:
    overlaps = (iou_matrix(detections, regions) >= MATCH_IOU).any(axis=1)
    return np.asarray(overlaps | centres_inside(detections, regions), dtype=np.bool_)


def _match_greedily(detections: Boxes, faces: Boxes) -> tuple[BoolArray, BoolArray]:
    """Which faces were detected, and which detections matched a face.

    In falling score order each detection takes the still-unmatched face it overlaps most, if that
    overlap reaches :data:`MATCH_IOU`; a second detection on a taken face is therefore unmatched.
    """
    face_detected = np.zeros(len(faces), dtype=np.bool_)
    detection_matched = np.zeros(len(detections), dtype=np.bool_)
    if len(faces) == 0:
        return face_detected, detection_matched
    ious = iou_matrix(detections, faces)
    for index in np.argsort(-detections[:, 4], kind="stable"):
        available = np.where(face_detected, -1.0, ious[index])
        best = int(np.argmax(available))
        if available[best] >= MATCH_IOU:
            face_detected[best] = True
            detection_matched[index] = True
    return face_detected, detection_matched


def _anonymized_coverage(face: list[float], anonymized: BoolArray) -> float:
    """Share of the face box's in-image area that is anonymized; 0 for a box outside the image.

    Pixel (row, col) is the unit square at (col, row); a box edge at a fractional coordinate
    counts the pixels it cuts by the part of them it covers, so coverage is exact area.
    """
    height, width = anonymized.shape
    x, y, w, h = face[:4]
    left, right = max(x, 0.0), min(x + w, float(width))
    top, bottom = max(y, 0.0), min(y + h, float(height))
    if right <= left or bottom <= top:
        return 0.0
    col_weights = _pixel_overlaps(left, right)
    row_weights = _pixel_overlaps(top, bottom)
    first_col, first_row = math.floor(left), math.floor(top)
    window = anonymized[
        first_row : first_row + len(row_weights), first_col : first_col + len(col_weights)
    ]
    weights = np.outer(row_weights, col_weights)
    return float((weights * window).sum() / weights.sum())


def _pixel_overlaps(start: float, stop: float) -> npt.NDArray[np.float64]:
    """Length of [start, stop) inside each unit pixel from floor(start) to ceil(stop)."""
    cells = np.arange(math.floor(start), math.ceil(stop), dtype=np.float64)
    return np.minimum(cells + 1, stop) - np.maximum(cells, start)


@dataclass(frozen=True)
class BucketFigures:
    faces: int
    protected: int
    detected: int

    @property
    def protected_rate(self) -> float | None:
        return self.protected / self.faces if self.faces else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.faces if self.faces else None


@dataclass(frozen=True)
class Report:
    buckets: dict[str, BucketFigures]  # keys: REPORT_BUCKETS
    negatives: int
    negatives_touched: int
    negative_regions: int
    negative_pixel_share: float
    negative_max_pixel_share: float
    images: int
    images_per_second: float
    median_ms: float


def summarize(scores: Sequence[ImageScore]) -> Report:
    outcomes = [face for score in scores for face in score.faces]
    buckets = {
        label: _figures([face for face in outcomes if face.bucket == label])
        for label in SIZE_BUCKETS
    }
    buckets[RESOLVABLE_FACES] = _figures(
        [face for face in outcomes if face.bucket != SIZE_BUCKETS[0]]
    )
    buckets[ALL_FACES] = _figures(outcomes)

    negatives = [score for score in scores if score.is_negative]
    negative_pixels = sum(score.pixels for score in negatives)
    anonymized_pixels = sum(score.anonymized_fraction * score.pixels for score in negatives)
    total_seconds = sum(score.seconds for score in scores)
    return Report(
        buckets=buckets,
        negatives=len(negatives),
        # Touched either way counts: a reported region or a blurred pixel on a face-free image.
        negatives_touched=sum(
            1 for score in negatives if score.false_alarm_regions or score.anonymized_fraction
        ),
        negative_regions=sum(score.false_alarm_regions for score in negatives),
        negative_pixel_share=anonymized_pixels / negative_pixels if negative_pixels else 0.0,
        negative_max_pixel_share=max(
            (score.anonymized_fraction for score in negatives), default=0.0
        ),
        images=len(scores),
        images_per_second=len(scores) / total_seconds if total_seconds > 0 else 0.0,
        median_ms=statistics.median(score.seconds for score in scores) * 1000 if scores else 0.0,
    )


def _figures(outcomes: Sequence[FaceOutcome]) -> BucketFigures:
    return BucketFigures(
        faces=len(outcomes),
        protected=sum(face.protected for face in outcomes),
        detected=sum(face.detected for face in outcomes),
    )


def report_to_dict(report: Report) -> dict[str, object]:
    return {
        "buckets": {
            label: {
                "faces": figures.faces,
                "protected": figures.protected,
                "detected": figures.detected,
                "protected_rate": figures.protected_rate,
                "recall": figures.recall,
            }
            for label, figures in report.buckets.items()
        },
        "negatives": report.negatives,
        "negatives_touched": report.negatives_touched,
        "negative_regions": report.negative_regions,
        "negative_pixel_share": report.negative_pixel_share,
        "negative_max_pixel_share": report.negative_max_pixel_share,
        "images": report.images,
        "images_per_second": report.images_per_second,
        "median_ms": report.median_ms,
    }


def format_report(report: Report) -> str:
    lines = [f"{'bucket':<8} {'faces':>7} {'protected':>10} {'recall':>8}"]
    for label, figures in report.buckets.items():
        lines.append(
            f"{label:<8} {figures.faces:>7} {_percent(figures.protected_rate):>10} "
            f"{_percent(figures.recall):>8}"
        )
    lines.append(
        f"negatives: {report.negatives} images, {report.negatives_touched} touched, "
        f"{report.negative_regions} regions, {report.negative_pixel_share:.2%} of pixels "
        f"anonymized (max {report.negative_max_pixel_share:.2%})"
    )
    lines.append(
        f"speed: {report.images} images, {report.images_per_second:.2f} images/s, "
        f"median {report.median_ms:.1f} ms"
    )
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"
