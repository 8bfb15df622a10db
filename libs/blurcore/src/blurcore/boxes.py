"""Pure geometry on face boxes.

A set of boxes is a float32 array of shape (N, 5): x1, y1, x2, y2 (pixels, x2 and y2 exclusive)
and the score.
"""

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.float32]


def empty_boxes() -> Boxes:
    return np.zeros((0, 5), dtype=np.float32)


def as_boxes(rows: npt.ArrayLike) -> Boxes:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def areas(boxes: Boxes) -> npt.NDArray[np.float32]:
    width = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    height = np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return np.asarray(width * height, dtype=np.float32)


def iou_matrix(a: Boxes, b: Boxes) -> npt.NDArray[np.float32]:
    """Intersection over union of each box in ``a`` with each in ``b``: shape (len(a), len(b))."""
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def suppress_duplicates(boxes: Boxes, iou_threshold: float) -> Boxes:
    """Classic greedy NMS: the best-scoring box of each overlapping group survives unchanged.

    For one detector's own near-duplicates (neighbouring heat-map peaks, adjacent anchors), which
    describe the same face: their union would be a box larger than the face.
    """
    order = np.argsort(-boxes[:, 4], kind="stable")
    remaining = boxes[order]
    kept = []
    while len(remaining):
        kept.append(remaining[0])
        remaining = remaining[1:][iou_matrix(remaining[:1], remaining[1:])[0] < iou_threshold]
    return np.stack(kept).astype(np.float32) if kept else empty_boxes()


def merge_overlapping(boxes: Boxes, iou_threshold: float) -> Boxes:
    """Non-maximum suppression that never shrinks the protected area.

    Boxes are visited by falling score; every box overlapping the kept one by at least
    ``iou_threshold`` joins its cluster, and the kept box grows to the union extent of its cluster.
    Classic NMS would discard the suppressed box, and with it any part of a face that only that box
    covered: a miss here is a data leak, a slightly larger blur is not.
    """
    if len(boxes) == 0:
        return empty_boxes()
    order = np.argsort(-boxes[:, 4], kind="stable")
    remaining = boxes[order]
    kept: list[npt.NDArray[np.float32]] = []
    while len(remaining):
        head = remaining[0]
        overlap = iou_matrix(head[None, :], remaining)[0] >= iou_threshold
        overlap[0] = True
        cluster = remaining[overlap]
        kept.append(
            np.array(
                [
                    cluster[:, 0].min(),
                    cluster[:, 1].min(),
                    cluster[:, 2].max(),
                    cluster[:, 3].max(),
                    head[4],
                ],
                dtype=np.float32,
            )
        )
        remaining = remaining[~overlap]
    return np.stack(kept).astype(np.float32)


def pad(boxes: Boxes, factor: float, width: int, height: int) -> Boxes:
    """Scale every box by ``factor`` around its centre and clip it to the image."""
    return clip(grow(boxes, factor), width, height)


def grow(boxes: Boxes, factor: float) -> Boxes:
    """Scale every box by ``factor`` around its centre, wherever that takes it."""
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    half_w = (boxes[:, 2] - boxes[:, 0]) * factor / 2
    half_h = (boxes[:, 3] - boxes[:, 1]) * factor / 2
    return np.stack(
        [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h, boxes[:, 4]],
        axis=1,
    ).astype(np.float32)


def clip(boxes: Boxes, width: int, height: int) -> Boxes:
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0, height)
    return clipped


def scale(boxes: Boxes, factor: float) -> Boxes:
    scaled = boxes.copy()
    scaled[:, :4] *= factor
    return scaled


def shift(boxes: Boxes, dx: float, dy: float) -> Boxes:
    shifted = boxes.copy()
    shifted[:, [0, 2]] += dx
    shifted[:, [1, 3]] += dy
    return shifted


def raise_top(boxes: Boxes, fraction: float) -> Boxes:
    """Move each box's top edge up by ``fraction`` of its height, not past the image's top."""
    raised = boxes.copy()
    raised[:, 1] = np.maximum(0.0, boxes[:, 1] - fraction * (boxes[:, 3] - boxes[:, 1]))
    return raised


def widen_narrow(boxes: Boxes, max_height_ratio: float) -> Boxes:
    """Widen, around its centre, each box taller than ``max_height_ratio`` times its width to
    exactly that ratio; other boxes are returned unchanged."""
    widened = boxes.copy()
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    half_w = (
        np.maximum(boxes[:, 2] - boxes[:, 0], (boxes[:, 3] - boxes[:, 1]) / max_height_ratio) / 2
    )
    widened[:, 0], widened[:, 2] = centre_x - half_w, centre_x + half_w
    return widened


def keep_plausible(boxes: Boxes, min_side: float, max_aspect: float) -> Boxes:
    """Drop boxes too small to be a face for the detector that produced them, or far from square.

    Call it in the detector's own input pixels, before mapping back to the image: a 10 px face
    found on an upscaled tile is 40 px there and survives, while a 10 px blip on a whole-frame pass
    (where the model cannot resolve faces that small) is noise and goes.
    """
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    aspect = width / np.maximum(height, 1e-6)
    plausible = (
        (np.minimum(width, height) >= min_side)
        & (aspect <= max_aspect)
        & (aspect >= 1.0 / max_aspect)
    )
    return np.asarray(boxes[plausible], dtype=np.float32)


def centres_inside(boxes: Boxes, regions: Boxes) -> npt.NDArray[np.bool_]:
    """Whether each box's centre lies in at least one of ``regions`` (right and bottom edges
    exclusive, like the boxes themselves)."""
    centre_x = ((boxes[:, 0] + boxes[:, 2]) / 2)[:, None]
    centre_y = ((boxes[:, 1] + boxes[:, 3]) / 2)[:, None]
    inside = (
        (centre_x >= regions[None, :, 0])
        & (centre_x < regions[None, :, 2])
        & (centre_y >= regions[None, :, 1])
        & (centre_y < regions[None, :, 3])
    )
    return np.asarray(inside.any(axis=1), dtype=np.bool_)


def to_xywh(boxes: Boxes) -> list[list[float]]:
    """Rows of [x, y, w, h, score] rounded for JSON: the public form of a region."""
    return [
        [
            round(float(x1), 1),
            round(float(y1), 1),
            round(float(x2 - x1), 1),
            round(float(y2 - y1), 1),
            round(float(score), 3),
        ]
        for x1, y1, x2, y2, score in boxes
    ]
