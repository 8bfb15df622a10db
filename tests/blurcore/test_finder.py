"""The profiles of blurcore.finder on the real models: the second opinion CenterFace gives on
unsure MediaPipe boxes, and the tiles that find faces too small for the whole-frame pass."""

import cv2
import numpy as np
import pytest
import skimage.data

from blurcore.boxes import as_boxes, iou_matrix
from blurcore.finder import (
    CENTERFACE_MAX_HEIGHT_RATIO,
    MEDIAPIPE_SURE_SCORE,
    WEAK_FRACTION,
    FaceFinder,
)
from blurcore.params import AnonymizeParams, Profile

ASTRONAUT_FACE = as_boxes([[175, 55, 275, 175, 1.0]])
BACKGROUND = as_boxes([[420, 300, 500, 380, 1.0]])  # the spacesuit's lower right: no face
DEFAULT = AnonymizeParams()


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    loaded = FaceFinder(threads=1)
    loaded.load()
    return loaded


def _scored(box: np.ndarray, score: float) -> np.ndarray:
    scored = box.copy()
    scored[:, 4] = score
    return scored


def test_unsure_mediapipe_box_on_a_face_is_confirmed_by_centerface(finder, astronaut):
    unsure = _scored(ASTRONAUT_FACE, MEDIAPIPE_SURE_SCORE - 0.4)
    kept = finder._confirmed_by_centerface(unsure, astronaut, DEFAULT)
    assert len(kept) == 1


def test_unsure_mediapipe_box_without_a_face_is_dropped(finder, astronaut):
    unsure = _scored(BACKGROUND, MEDIAPIPE_SURE_SCORE - 0.4)
    assert len(finder._confirmed_by_centerface(unsure, astronaut, DEFAULT)) == 0


def test_sure_mediapipe_box_needs_no_second_opinion(finder, astronaut):
    sure = _scored(BACKGROUND, MEDIAPIPE_SURE_SCORE)
    assert len(finder._confirmed_by_centerface(sure, astronaut, DEFAULT)) == 1


def test_narrow_centerface_boxes_are_widened_to_cover_the_head(finder, astronaut):
    """The portrait squeezed to half its width: CenterFace frames the face about 1.8 times as
    tall as wide; what the finder reports is no narrower than its bound."""
    squeezed = np.ascontiguousarray(
        cv2.resize(astronaut, None, fx=0.5, fy=1.0, interpolation=cv2.INTER_AREA)
    )
    raw = finder.centerface.detect(squeezed, DEFAULT.centerface_confidence)
    assert ((raw[:, 3] - raw[:, 1]) / (raw[:, 2] - raw[:, 0])).min() > CENTERFACE_MAX_HEIGHT_RATIO
    strong, _weak = finder._centerface(squeezed, DEFAULT)
    assert len(strong) == 1
    ratio = (strong[:, 3] - strong[:, 1]) / (strong[:, 2] - strong[:, 0])
    assert ratio == pytest.approx([CENTERFACE_MAX_HEIGHT_RATIO])


def _small_face_scene() -> tuple[np.ndarray, np.ndarray]:
    """The portrait shrunk to a 30 px face, pasted into a 2000x1500 grey frame: too small for
    MediaPipe on the whole frame (3 px at its 192 px input), easy on a 256 px tile."""
    portrait = np.ascontiguousarray(skimage.data.astronaut())
    shrink = 0.3
    small = cv2.resize(portrait, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    frame = np.full((1500, 2000, 3), 128, np.uint8)
    left, top = 1100, 600
    frame[top : top + small.shape[0], left : left + small.shape[1]] = small
    face = ASTRONAUT_FACE.copy()
    face[:, :4] = face[:, :4] * shrink + np.array([left, top, left, top])
    return frame, face


def test_tiles_find_a_face_the_whole_frame_pass_cannot(finder):
    frame, face = _small_face_scene()
    whole_frame = finder._mediapipe_pass(frame, DEFAULT)
    assert len(whole_frame) == 0 or iou_matrix(whole_frame, face).max() < 0.3
    tiled = finder._tiled_mediapipe(frame, DEFAULT)
    assert iou_matrix(tiled, face).max() > 0.4  # found, and mapped back to frame pixels


def test_thorough_profile_includes_the_tiles(finder):
    frame, face = _small_face_scene()
    fast = finder.find(frame, AnonymizeParams(profile=Profile.FAST))
    thorough = finder.find(frame, AnonymizeParams(profile=Profile.THOROUGH))
    assert len(fast) == 0 or iou_matrix(fast, face).max() < 0.3
    assert iou_matrix(thorough, face).max() > 0.4


def test_candidates_hold_the_faces_find_gives_and_weaker_centerface_boxes(finder, astronaut):
    candidates = finder.find_candidates(astronaut, DEFAULT)
    assert np.array_equal(candidates.faces, finder.find(astronaut, DEFAULT))
    floor = DEFAULT.centerface_confidence * WEAK_FRACTION
    assert (candidates.weak[:, 4] >= floor).all()
    assert (candidates.weak[:, 4] < DEFAULT.centerface_confidence).all()


def test_the_fast_profile_has_no_weak_candidates(finder, astronaut):
    fast = AnonymizeParams(profile=Profile.FAST)
    assert len(finder.find_candidates(astronaut, fast).weak) == 0
