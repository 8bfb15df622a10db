"""blurcore.image_memory: the memory one photo takes, from its header, against the budget."""

import pytest

from blurcore.image_memory import memory_budget, working_memory_bytes


def test_working_memory_is_three_decoded_copies_or_one_beside_the_detectors_rgb_copy():
    assert working_memory_bytes(100, 10, channels=4, sample_bytes=2) == 3 * 100 * 10 * 8
    assert working_memory_bytes(100, 10, channels=1, sample_bytes=1) == 1000 + 3 * 1000


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_memory_budget_fits_every_8_bit_image_at_the_pixel_limit(channels):
    assert working_memory_bytes(10_000, 10_000, channels, 1) <= memory_budget(100_000_000)


@pytest.mark.parametrize(("channels", "most_pixels"), [(4, 50_000_000), (3, 66_666_666)])
def test_memory_budget_gives_16_bit_images_fewer_pixels(channels, most_pixels):
    budget = memory_budget(100_000_000)
    assert working_memory_bytes(most_pixels, 1, channels, 2) <= budget
    assert working_memory_bytes(most_pixels + 1, 1, channels, 2) > budget
