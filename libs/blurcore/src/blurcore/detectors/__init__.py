"""Face detectors behind one interface: ``load()`` once, then ``detect(rgb) -> Boxes``."""

from blurcore.detectors.base import Detector
from blurcore.detectors.centerface import CenterFace
from blurcore.detectors.mediapipe_full_range import MediaPipeFullRange

__all__ = ["CenterFace", "Detector", "MediaPipeFullRange"]
