"""Make face regions unrecognizable, in place of the pixels a detector found.

Every mode works on the colour channels of any decoded layout (gray, BGR, BGRA; 8 or 16 bit) and
leaves alpha alone. Effort grows with the face: the strength is defined relative to the region's
size, so a 20 px face and a 2000 px face come out equally unrecognizable.
"""

import math

import cv2
import numpy as np
import numpy.typing as npt

from blurcore.boxes import Boxes
from blurcore.imageio import Pixels
from blurcore.params import AnonymizeParams, Mode, Shape

# A face keeps no identity once fewer than about six independent samples span it: the blur's
# sigma and the pixel blocks are a sixth of the region's longer side (times the strength).
SAMPLES_ACROSS_FACE = 6.0
# Large Gaussian kernels cost O(sigma) per pixel; blurring a copy shrunk so that sigma is this many
# pixels, then enlarging it, gives the same look at a cost independent of the face's size.
WORKING_SIGMA = 2.0
OUTLINE_GREEN = (0.0, 1.0, 0.0)  # BGR, as a fraction of the channel's maximum


def pixel_bounds(
    box: npt.NDArray[np.float32], width: int, height: int
) -> tuple[int, int, int, int]:
    """Integer bounds holding the whole box (rounded outwards: partial pixels are protected)."""
    left = max(0, math.floor(float(box[0])))
    top = max(0, math.floor(float(box[1])))
    right = min(width, math.ceil(float(box[2])))
    bottom = min(height, math.ceil(float(box[3])))
    return left, top, right, bottom


def shape_mask(height: int, width: int, shape: Shape) -> npt.NDArray[np.bool_]:
    """Which pixels of a height x width region the anonymization covers."""
    if shape is Shape.RECTANGLE:
        return np.ones((height, width), dtype=bool)
    mask = np.zeros((height, width), dtype=np.uint8)
    # Drawn at 4x sub-pixel precision so the ellipse touches the region's edges exactly.
    shift = 2
    centre = (round((width - 1) / 2 * 4), round((height - 1) / 2 * 4))
    axes = (round(width / 2 * 4), round(height / 2 * 4))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, thickness=-1, shift=shift)
    return mask > 0


def visible_shape(
    box: npt.NDArray[np.float32], width: int, height: int, shape: Shape
) -> tuple[tuple[int, int, int, int], npt.NDArray[np.bool_]] | None:
    """The part of a region inside the frame: its pixel bounds there, and which of those pixels
    its shape covers. The shape is that of the whole region, cut by the frame's edge, so a face
    at the edge keeps the ellipse it would have had, not one squeezed into what is left of its
    box (which would uncover the face's corners next to the edge). None when nothing shows."""
    full_left, full_top = math.floor(float(box[0])), math.floor(float(box[1]))
    full_right, full_bottom = math.ceil(float(box[2])), math.ceil(float(box[3]))
    left, top = max(0, full_left), max(0, full_top)
    right, bottom = min(width, full_right), min(height, full_bottom)
    if right <= left or bottom <= top:
        return None
    whole = shape_mask(full_bottom - full_top, full_right - full_left, shape)
    inside = whole[top - full_top : bottom - full_top, left - full_left : right - full_left]
    return (left, top, right, bottom), inside


def region_mask(regions: Boxes, height: int, width: int, shape: Shape) -> npt.NDArray[np.bool_]:
    """The union of every pixel that anonymizing ``regions`` changes: what a reviewer can trust."""
    covered = np.zeros((height, width), dtype=bool)
    for box in regions:
        visible = visible_shape(box, width, height, shape)
        if visible is not None:
            (left, top, right, bottom), inside = visible
            covered[top:bottom, left:right] |= inside
    return covered


def _blurred(region: Pixels, strength: float, side: int) -> Pixels:
    height, width = region.shape[:2]
    sigma = strength * side / SAMPLES_ACROSS_FACE
    shrink = max(1.0, sigma / WORKING_SIGMA)
    small_size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    small = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / shrink, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(
        cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), dtype=region.dtype
    )


def _pixelated(region: Pixels, strength: float, side: int) -> Pixels:
    height, width = region.shape[:2]
    block = max(2.0, strength * side / SAMPLES_ACROSS_FACE)
    blocks = (max(1, round(width / block)), max(1, round(height / block)))
    small = cv2.resize(region, blocks, interpolation=cv2.INTER_AREA)
    return np.asarray(
        cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST), dtype=region.dtype
    )


def _anonymized(region: Pixels, params: AnonymizeParams, side: int) -> Pixels:
    """``region`` made unrecognizable, as strongly as a face ``side`` pixels across needs (the
    whole face's side, even where the frame's edge cuts part of it off)."""
    if params.mode is Mode.BLUR:
        return _blurred(region, params.strength, side)
    if params.mode is Mode.PIXELATE:
        return _pixelated(region, params.strength, side)
    return np.zeros_like(region)


def anonymize(pixels: Pixels, regions: Boxes, params: AnonymizeParams) -> Pixels:
    """A copy of ``pixels`` with every region anonymized (and outlined if asked). A region may
    reach beyond the frame; what of its shape lies inside is anonymized."""
    output = pixels.copy()
    height, width = output.shape[:2]
    colour = output[..., :3] if output.ndim == 3 else output[..., None]
    for box in regions:
        visible = visible_shape(box, width, height, params.shape)
        if visible is None:
            continue
        (left, top, right, bottom), inside = visible
        region = np.ascontiguousarray(colour[top:bottom, left:right])
        side = math.ceil(float(max(box[2] - box[0], box[3] - box[1])))
        replaced = _anonymized(region, params, side).reshape(region.shape)
        # copyto with a mask writes in place; boolean indexing would gather and scatter copies.
        np.copyto(colour[top:bottom, left:right], replaced, where=inside[..., None])
    if params.outline:
        _draw_outlines(colour, regions)
    return output


def _draw_outlines(colour: Pixels, regions: Boxes) -> None:
    height, width = colour.shape[:2]
    maximum = float(np.iinfo(colour.dtype.type).max)
    channels = colour.shape[2]
    paint = tuple(c * maximum for c in OUTLINE_GREEN) if channels == 3 else (maximum,)
    canvas = np.ascontiguousarray(colour)
    for box in regions:
        left, top, right, bottom = pixel_bounds(box, width, height)
        thickness = max(1, round(max(right - left, bottom - top) / 100))
        cv2.rectangle(canvas, (left, top), (right - 1, bottom - 1), paint, thickness)
    colour[...] = canvas
