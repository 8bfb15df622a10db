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


def region_mask(regions: Boxes, height: int, width: int, shape: Shape) -> npt.NDArray[np.bool_]:
    """The union of every pixel that anonymizing ``regions`` changes: what a reviewer can trust."""
    covered = np.zeros((height, width), dtype=bool)
    for box in regions:
        left, top, right, bottom = pixel_bounds(box, width, height)
        if right > left and bottom > top:
            covered[top:bottom, left:right] |= shape_mask(bottom - top, right - left, shape)
    return covered


def _blurred(region: Pixels, strength: float) -> Pixels:
    height, width = region.shape[:2]
    sigma = strength * max(height, width) / SAMPLES_ACROSS_FACE
    shrink = max(1.0, sigma / WORKING_SIGMA)
    small_size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    small = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / shrink, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(
        cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), dtype=region.dtype
    )


def _pixelated(region: Pixels, strength: float) -> Pixels:
    height, width = region.shape[:2]
    block = max(2.0, strength * max(height, width) / SAMPLES_ACROSS_FACE)
    blocks = (max(1, round(width / block)), max(1, round(height / block)))
    small = cv2.resize(region, blocks, interpolation=cv2.INTER_AREA)
    return np.asarray(
        cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST), dtype=region.dtype
    )


def _anonymized(region: Pixels, params: AnonymizeParams) -> Pixels:
    if params.mode is Mode.BLUR:
        return _blurred(region, params.strength)
    if params.mode is Mode.PIXELATE:
        return _pixelated(region, params.strength)
    return np.zeros_like(region)


def anonymize(pixels: Pixels, regions: Boxes, params: AnonymizeParams) -> Pixels:
    """A copy of ``pixels`` with every region anonymized (and outlined if asked)."""
    output = pixels.copy()
    height, width = output.shape[:2]
    colour = output[..., :3] if output.ndim == 3 else output[..., None]
    for box in regions:
        left, top, right, bottom = pixel_bounds(box, width, height)
        if right <= left or bottom <= top:
            continue
        region = np.ascontiguousarray(colour[top:bottom, left:right])
        replaced = _anonymized(region, params).reshape(region.shape)
        inside = shape_mask(bottom - top, right - left, params.shape)
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
