"""Profiles: which detectors run on which views of the image, merged into one set of face boxes."""

from dataclasses import dataclass

import cv2
import numpy as np

from blurcore.boxes import (
    Boxes,
    centres_inside,
    empty_boxes,
    keep_plausible,
    merge_overlapping,
    pad,
    raise_top,
    scale,
    shift,
    suppress_duplicates,
    widen_narrow,
)
from blurcore.detectors import CenterFace, Detector, MediaPipeFullRange
from blurcore.detectors.base import RGBImage
from blurcore.detectors.mediapipe_full_range import INPUT_SIDE as MEDIAPIPE_INPUT_SIDE
from blurcore.params import AnonymizeParams, Profile
from blurcore.tiling import plan_tiles

# Smallest face side, in the detector's own input pixels, that each model resolves; below it a box
# is noise. Checked in those pixels, so a tiny face found on an enlarged tile is kept.
MEDIAPIPE_MIN_SIDE_AT_INPUT = 4.0
CENTERFACE_MIN_SIDE = 6.0
# A face box is seldom more than three times as tall as wide: a head in profile or seen from
# behind, with its neck, reaches 3.3 in CenterFace's boxes. At 2.5 those were dropped; at 3.5
# dev2 protects 71.9% of faces >= 128 px instead of 65.6% (64-128 px recall 83.9% -> 84.7%),
# with dev's figures and its 32 negatives unchanged (5 touched, 12 regions).
MAX_ASPECT = 3.5
# CenterFace frames a head in profile or seen from behind with a narrow box around its visible
# part (30 x 88 px where the annotation is 55 x 114, the hair beside it left out); an ellipse
# padded from it leaves the head's sides showing. Such boxes are widened to 1.5 times as tall as
# wide. Measured on the shared video clips, default profile: faces >= 64 px protected in 98.1% of
# their frames instead of 97.4%, the longest leak of a face not heavily occluded 3 frames
# instead of 5; dev + dev2 photos: the same faces protected.
CENTERFACE_MAX_HEIGHT_RATIO = 1.5
# MediaPipe's boxes are square and stop at the eyebrows; face annotations and CenterFace's boxes
# reach the hairline. Measured: the annotated top lies a median 0.13 of MediaPipe's box height
# above its top edge on the dev faces >= 64 px both agree on, CenterFace's 0.05-0.15 above it on
# the public-domain astronaut at six scales; the bottom edges agree within 0.02.
MEDIAPIPE_FOREHEAD = 0.15
# A whole-frame MediaPipe box scoring less needs a second opinion (_confirmed_by_centerface).
MEDIAPIPE_SURE_SCORE = 0.8
# CenterFace is surest on faces of about this size; a crop is scaled so the candidate has it.
CONFIRM_FACE_SIDE = 96
CONFIRM_CONTEXT = 2.0
# Weak boxes reach down to half of CenterFace's threshold (0.1 at the default 0.2).
WEAK_FRACTION = 0.5
TILE_SIDE = 256
TILE_OVERLAP = 0.25


@dataclass(frozen=True)
class Candidates:
    faces: Boxes
    weak: Boxes


class FaceFinder:
    """Owns one instance of each detector (loaded once per process) and runs the profiles."""

    def __init__(self, threads: int | None = None) -> None:
        self.mediapipe = MediaPipeFullRange(threads)
        self.centerface = CenterFace(threads)

    def detectors_for(self, profile: Profile) -> list[Detector]:
        if profile is Profile.FAST:
            return [self.mediapipe]
        return [self.centerface, self.mediapipe]

    def load(self, profiles: tuple[Profile, ...] = tuple(Profile)) -> None:
        for detector in {d for p in profiles for d in self.detectors_for(p)}:
            detector.load()

    def find(self, image: RGBImage, params: AnonymizeParams) -> Boxes:
        """Face boxes (unpadded) in the pixels of ``image``."""
        return self.find_candidates(image, params).faces

    def find_candidates(self, image: RGBImage, params: AnonymizeParams) -> Candidates:
        """``find``'s face boxes, and beside them CenterFace's boxes scoring between
        ``WEAK_FRACTION`` of its threshold and the threshold (same inference, no extra cost).

        A weak box alone is no face: at those scores CenterFace fires on textures too. Next to a
        face seen in the frames around it, it is evidence of where that face went: the video
        tracker lets weak boxes continue a track, never start one.
        """
        height, width = image.shape[:2]
        shrink = min(1.0, params.max_detection_side / max(height, width))
        view = image
        if shrink < 1.0:
            size = (round(width * shrink), round(height * shrink))
            view = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
        if params.denoise:
            view = np.asarray(cv2.fastNlMeansDenoisingColored(view, None, 5, 5, 7, 21), np.uint8)

        found = [self._mediapipe_pass(view, params)]
        weak = empty_boxes()
        if params.profile is not Profile.FAST:
            found[0] = self._confirmed_by_centerface(found[0], view, params)
            strong, weak = self._centerface(view, params)
            found.append(strong)
        if params.profile is Profile.THOROUGH:
            found.append(self._tiled_mediapipe(view, params))
        merged = merge_overlapping(np.concatenate(found), params.nms_iou)
        if shrink < 1.0:
            return Candidates(scale(merged, 1.0 / shrink), scale(weak, 1.0 / shrink))
        return Candidates(merged, weak)

    def _mediapipe_pass(self, view: RGBImage, params: AnonymizeParams) -> Boxes:
        """MediaPipe on one view (the whole frame, or one tile of it): its plausible boxes in
        the view's pixels, raised to the hairline."""
        boxes = suppress_duplicates(
            self.mediapipe.detect(view, params.mediapipe_confidence), params.nms_iou
        )
        to_input = MEDIAPIPE_INPUT_SIDE / max(view.shape[:2])
        plausible = keep_plausible(scale(boxes, to_input), MEDIAPIPE_MIN_SIDE_AT_INPUT, MAX_ASPECT)
        return raise_top(scale(plausible, 1.0 / to_input), MEDIAPIPE_FOREHEAD)

    def _centerface(self, view: RGBImage, params: AnonymizeParams) -> tuple[Boxes, Boxes]:
        """CenterFace's plausible boxes at its threshold, and its weak ones below it. NMS runs
        by falling score, so a weak box never suppresses a strong one: the strong set is what
        the threshold alone would give."""
        floor = params.centerface_confidence * WEAK_FRACTION
        boxes = suppress_duplicates(self.centerface.detect(view, floor), params.nms_iou)
        plausible = widen_narrow(
            keep_plausible(boxes, CENTERFACE_MIN_SIDE, MAX_ASPECT), CENTERFACE_MAX_HEIGHT_RATIO
        )
        strong = plausible[:, 4] >= params.centerface_confidence
        return plausible[strong], plausible[~strong]

    def _tiled_mediapipe(self, view: RGBImage, params: AnonymizeParams) -> Boxes:
        height, width = view.shape[:2]
        found = [empty_boxes()]
        for tile in plan_tiles(width, height, TILE_SIDE, TILE_OVERLAP):
            crop = view[tile.top : tile.bottom, tile.left : tile.right]
            found.append(shift(self._mediapipe_pass(crop, params), tile.left, tile.top))
        return np.concatenate(found)

    def _confirmed_by_centerface(
        self, candidates: Boxes, view: RGBImage, params: AnonymizeParams
    ) -> Boxes:
        """Keep sure MediaPipe boxes, and unsure ones that CenterFace also sees.

        At 0.3 the whole-frame model fires on round textures (fruit, stars, wheels) as readily as on
        faces; CenterFace, shown the candidate's surroundings scaled to the face size it handles
        best, tells them apart without losing the large close-up faces it misses on the full frame.
        """
        height, width = view.shape[:2]
        kept = []
        for box in candidates:
            if box[4] >= MEDIAPIPE_SURE_SCORE:
                kept.append(box)
                continue
            context = pad(box[None, :], CONFIRM_CONTEXT, width, height)[0]
            left, top, right, bottom = (int(v) for v in context[:4])
            zoom = CONFIRM_FACE_SIDE / max(box[2] - box[0], box[3] - box[1])
            size = (max(1, round((right - left) * zoom)), max(1, round((bottom - top) * zoom)))
            interpolation = cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR
            crop = np.asarray(
                cv2.resize(view[top:bottom, left:right], size, interpolation=interpolation),
                np.uint8,
            )
            opinions = shift(
                scale(self.centerface.detect(crop, params.centerface_confidence), 1 / zoom),
                left,
                top,
            )
            if centres_inside(opinions, box[None, :]).any():
                kept.append(box)
        return np.stack(kept) if kept else empty_boxes()
