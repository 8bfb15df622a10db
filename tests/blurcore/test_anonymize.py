import numpy as np
import pytest

from blurcore.anonymize import anonymize, region_mask, shape_mask
from blurcore.boxes import as_boxes
from blurcore.params import AnonymizeParams, Mode, Shape

REGION = as_boxes([[20, 30, 60, 90, 1.0]])


def _textured(height: int = 120, width: int = 100, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(7)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("shape", list(Shape))
def test_anonymize_changes_region_and_nothing_else(mode, shape):
    image = _textured()
    output = anonymize(image, REGION, AnonymizeParams(mode=mode, shape=shape))
    inside = region_mask(REGION, 120, 100, shape)
    changed = (output != image).any(axis=2)
    assert not changed[~inside].any()
    assert changed[inside].mean() > 0.9


def test_anonymize_leaves_input_untouched():
    image = _textured()
    before = image.copy()
    anonymize(image, REGION, AnonymizeParams())
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("mode", [Mode.BLUR, Mode.PIXELATE])
@pytest.mark.parametrize("side", [12, 48, 400])
def test_anonymize_removes_detail_at_any_face_size(mode, side):
    # Fine detail (what identifies a face) must go whatever the size: the kernel grows with it.
    image = _textured(side + 20, side + 20)
    box = as_boxes([[10, 10, 10 + side, 10 + side, 1.0]])
    output = anonymize(image, box, AnonymizeParams(mode=mode, shape=Shape.RECTANGLE))
    region = output[10 : 10 + side, 10 : 10 + side].astype(np.float32)
    original = image[10 : 10 + side, 10 : 10 + side].astype(np.float32)
    detail_left = np.abs(np.diff(region, axis=1)).mean() / np.abs(np.diff(original, axis=1)).mean()
    assert detail_left < 0.35


def test_anonymize_stronger_strength_removes_more_detail():
    image = _textured(220, 220)
    box = as_boxes([[10, 10, 210, 210, 1.0]])
    detail = []
    for strength in (0.5, 2.0):
        output = anonymize(image, box, AnonymizeParams(strength=strength)).astype(np.float32)
        detail.append(np.abs(np.diff(output[20:200, 20:200], axis=1)).mean())
    assert detail[1] < detail[0]


def test_anonymize_fill_paints_black():
    output = anonymize(_textured(), REGION, AnonymizeParams(mode=Mode.FILL, shape=Shape.RECTANGLE))
    assert (output[30:90, 20:60] == 0).all()


def test_anonymize_keeps_alpha_and_handles_gray_and_16_bit():
    rgba = _textured(channels=4)
    output = anonymize(rgba, REGION, AnonymizeParams())
    np.testing.assert_array_equal(output[..., 3], rgba[..., 3])
    assert (output[..., :3] != rgba[..., :3]).any()

    gray = _textured(channels=1)
    assert (anonymize(gray, REGION, AnonymizeParams()) != gray).any()

    deep = _textured().astype(np.uint16) * 257
    output16 = anonymize(deep, REGION, AnonymizeParams())
    assert output16.dtype == np.uint16
    assert (output16[40:80, 30:50] != deep[40:80, 30:50]).any()


def test_anonymize_outline_draws_green_box_only_when_asked():
    image = np.zeros((120, 100, 3), dtype=np.uint8)
    plain = anonymize(image, REGION, AnonymizeParams(mode=Mode.FILL))
    outlined = anonymize(image, REGION, AnonymizeParams(mode=Mode.FILL, outline=True))
    assert (plain == 0).all()
    assert tuple(outlined[30, 40]) == (0, 255, 0)  # BGR green on the top edge


def test_shape_mask_ellipse_touches_edges_and_spares_corners():
    mask = shape_mask(41, 61, Shape.ELLIPSE)
    assert all(mask[row, col] for row, col in ((20, 0), (20, 60), (0, 30), (40, 30)))
    assert not any(mask[row, col] for row, col in ((0, 0), (40, 60)))
    assert shape_mask(5, 7, Shape.RECTANGLE).all()


def test_region_mask_is_union_and_ignores_empty_boxes():
    boxes = as_boxes([[0, 0, 10, 10, 1], [5, 5, 15, 15, 1], [50, 50, 50, 60, 1]])
    mask = region_mask(boxes, 20, 20, Shape.RECTANGLE)
    assert mask.sum() == 100 + 100 - 25


def test_a_region_cut_by_the_edge_keeps_the_whole_region_s_ellipse():
    """A face half outside the frame: the ellipse is the whole region's, cut at the edge, so the
    face's part along the edge stays covered from top to bottom."""
    cut = as_boxes([[-50, 0, 50, 100, 1.0]])
    mask = region_mask(cut, 100, 100, Shape.ELLIPSE)
    assert mask[2, 0]  # near the top, on the edge: inside the whole ellipse
    assert not mask[2, 49]  # near the top, at the region's far side: outside it
    output = anonymize(_textured(100, 100), cut, AnonymizeParams(mode=Mode.FILL))
    assert (output[mask] == 0).all()
    assert (output[~mask] != 0).any()
