import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blurcore.tiling import plan_tiles


def test_plan_tiles_single_tile_for_small_image():
    tiles = plan_tiles(100, 80, tile=256, overlap=0.25)
    assert [(t.left, t.top, t.right, t.bottom) for t in tiles] == [(0, 0, 100, 80)]


@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(64, 512), st.floats(0.0, 0.6))
def test_plan_tiles_cover_every_pixel_with_overlap(width, height, tile, overlap):
    tiles = plan_tiles(width, height, tile, overlap)
    covered = np.zeros((height, width), dtype=bool)
    for t in tiles:
        assert 0 <= t.left < t.right <= width
        assert 0 <= t.top < t.bottom <= height
        covered[t.top : t.bottom, t.left : t.right] = True
    assert covered.all()
    lefts = sorted({t.left for t in tiles})
    for first, second in itertools.pairwise(lefts):
        assert first + tile - second >= overlap * tile - 1  # neighbours share the overlap


def test_plan_tiles_rejects_full_overlap():
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles(100, 100, 50, 1.0)
