"""Overlapping square tiles, so a whole-frame detector sees small faces at a size it can resolve."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    left: int
    top: int
    right: int
    bottom: int


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile * (1.0 - overlap)
    count = math.ceil((length - tile) / stride) + 1
    # Spread the tiles evenly so the last one ends exactly at the edge instead of sticking out.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def plan_tiles(width: int, height: int, tile: int, overlap: float) -> list[Tile]:
    """Tiles of side ``tile`` (clipped to the image) covering every pixel, neighbours sharing at
    least ``overlap`` of a side, so a face cut by one tile's edge lies whole inside another when it
    is smaller than ``overlap * tile``."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError("overlap must be in [0, 1)")
    return [
        Tile(left, top, min(left + tile, width), min(top + tile, height))
        for top in _starts(height, tile, overlap)
        for left in _starts(width, tile, overlap)
    ]
