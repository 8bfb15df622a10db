"""Padding and shape against protection and false alarms: the data behind the default padding.

Detection runs once per photo (default profile); each padding and shape is then applied to the same
boxes and scored by the pixels it would anonymize, so the rows differ in geometry only.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from blurcore import imageio
from blurcore.anonymize import region_mask
from blurcore.boxes import Boxes, pad
from blurcore.evaluation import Sample
from blurcore.params import AnonymizeParams, Shape
from blurcore.pipeline import Anonymizer
from blurcore.scoring import score_image, summarize

from .page import fill, markdown_table
from .runner import progress

PADDINGS = (1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0)
BUCKETS = ("<16", ">=16", "64-128", ">=128")


@dataclass(frozen=True)
class Geometry:
    shape: Shape
    padding: float
    protected: dict[str, float | None]
    negatives_touched: int
    negatives: int
    negative_pixel_share: float


def _detections(samples: Sequence[Sample]) -> list[tuple[Sample, Boxes, int, int]]:
    anonymizer = Anonymizer(threads=2)
    anonymizer.load()
    params = AnonymizeParams()
    found = []
    for sample in samples:
        image = imageio.decode(sample.path.read_bytes())
        faces, _regions = anonymizer.detect(image, params)
        height, width = image.pixels.shape[:2]
        found.append((sample, faces, width, height))
    return found


def sweep(samples: Sequence[Sample]) -> list[Geometry]:
    progress(f"padding sweep: {len(samples)} photos, {len(PADDINGS)} paddings, both shapes")
    found = _detections(samples)
    rows = []
    for shape in Shape:
        for padding in PADDINGS:
            scores = [
                score_image(
                    file=str(sample.path),
                    faces=sample.faces,
                    ignore=sample.ignore,
                    dont_care=sample.dont_care,
                    detections=faces,
                    anonymized=region_mask(
                        pad(faces, padding, width, height), height, width, shape
                    ),
                    seconds=0.0,
                    is_negative=sample.is_negative,
                )
                for sample, faces, width, height in found
            ]
            report = summarize(scores)
            rows.append(
                Geometry(
                    shape=shape,
                    padding=padding,
                    protected={b: report.buckets[b].protected_rate for b in BUCKETS},
                    negatives_touched=report.negatives_touched,
                    negatives=report.negatives,
                    negative_pixel_share=report.negative_pixel_share,
                )
            )
    return rows


def padding_section(rows: Sequence[Geometry], datasets: Sequence[str]) -> str:
    default = AnonymizeParams()
    table = [
        [
            row.shape.value,
            f"{row.padding:.1f}"
            + (
                " **default**"
                if (row.shape, row.padding) == (default.shape, default.padding)
                else ""
            ),
            *(f"{rate:.1%}" if rate is not None else "-" for rate in row.protected.values()),
            f"{row.negatives_touched} of {row.negatives}",
            f"{row.negative_pixel_share:.2%}",
        ]
        for row in rows
    ]
    header = [
        "shape",
        "padding",
        *(f"protected {bucket} px" for bucket in BUCKETS),
        "negatives touched",
        "negatives' pixels anonymized",
    ]
    names = ", ".join(f"`{path}`" for path in datasets)
    return fill("padding", datasets=names, table=markdown_table(header, table))
