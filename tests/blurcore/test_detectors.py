"""The real bundled models on a public-domain portrait (scikit-image's astronaut, NASA)."""

import numpy as np
import pytest

from blurcore.anonymize import anonymize
from blurcore.boxes import iou_matrix, pad
from blurcore.detectors import CenterFace, MediaPipeFullRange
from blurcore.finder import FaceFinder
from blurcore.params import AnonymizeParams, Profile

ASTRONAUT_FACE = np.array([[175, 55, 275, 175, 1.0]], dtype=np.float32)  # x1, y1, x2, y2


@pytest.fixture(scope="module", params=[MediaPipeFullRange, CenterFace], ids=lambda d: d.name)
def detector(request):
    loaded = request.param(threads=1)
    loaded.load()
    return loaded


def test_detect_finds_astronaut_face(detector, astronaut):
    boxes = detector.detect(astronaut, 0.3 if detector.name.startswith("mediapipe") else 0.2)
    assert len(boxes) >= 1
    assert iou_matrix(boxes, ASTRONAUT_FACE).max() > 0.4


def test_detect_honours_low_confidence_threshold(astronaut):
    # MediaPipe's classic API silently drops scores under 0.6; ours must return them.
    detector = MediaPipeFullRange(threads=1)
    low = detector.detect(astronaut, 0.3)
    high = detector.detect(astronaut, 0.6)
    assert len(low) > len(high)
    assert (low[:, 4] < 0.6).any()
    assert (low[:, 4] >= 0.3).all()


def test_detect_finds_nothing_in_flat_image(detector):
    flat = np.full((300, 400, 3), 128, dtype=np.uint8)
    assert len(detector.detect(flat, 0.3)) == 0


def test_detect_rejects_non_rgb_input(detector):
    with pytest.raises(ValueError, match="RGB"):
        detector.detect(np.zeros((10, 10), dtype=np.uint8), 0.3)


def test_detect_maps_boxes_back_to_image_pixels(detector, astronaut):
    # The same face on a larger canvas must come back at the shifted position.
    canvas = np.zeros((700, 900, 3), dtype=np.uint8)
    canvas[100:612, 300:812] = astronaut
    confidence = 0.3 if detector.name.startswith("mediapipe") else 0.2
    shifted = ASTRONAUT_FACE + np.array([300, 100, 300, 100, 0], dtype=np.float32)
    assert iou_matrix(detector.detect(canvas, confidence), shifted).max() > 0.4


def test_default_blur_defeats_both_detectors(detector, astronaut):
    # The blur must be strong enough that no detector finds the face it blurred, even at a low
    # threshold: soft is not enough.
    bgr = np.ascontiguousarray(astronaut[..., ::-1])
    confidence = 0.3 if detector.name.startswith("mediapipe") else 0.2
    regions = pad(detector.detect(astronaut, confidence), 1.3, 512, 512)
    blurred = anonymize(bgr, regions, AnonymizeParams())
    again = detector.detect(np.ascontiguousarray(blurred[..., ::-1]), confidence)
    assert len(again) == 0 or iou_matrix(again, ASTRONAUT_FACE).max() < 0.1


def test_mediapipe_face_boxes_reach_the_forehead(astronaut):
    # MediaPipe's own boxes stop at the eyebrows; the finder raises their top edge so that a face
    # is covered up to the hairline, as the annotated box and CenterFace's box are.
    finder = FaceFinder(threads=1)
    finder.load((Profile.FAST,))
    boxes = finder.find(astronaut, AnonymizeParams(profile=Profile.FAST))
    assert iou_matrix(boxes, ASTRONAUT_FACE).max() > 0.6
    face_top, face_height = ASTRONAUT_FACE[0, 1], ASTRONAUT_FACE[0, 3] - ASTRONAUT_FACE[0, 1]
    assert boxes[:, 1].min() <= face_top + 0.05 * face_height
