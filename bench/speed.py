"""Timed rounds over the same images, and how a page shows them."""

import statistics
from dataclasses import dataclass

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


SPEED_HEADER = ["measurement", "median round (s)", "images/s", "median ms/image"]


def speed_row(name: str, speed: Speed) -> list[str]:
    return [
        name,
        f"{speed.median_round_seconds:.2f}",
        f"{speed.images_per_second:.1f}",
        f"{speed.median_image_ms:.1f}",
    ]
