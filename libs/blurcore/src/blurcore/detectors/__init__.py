"""Face detectors behind one interface: ``load()`` once, then ``detect(rgb) -> Boxes``."""

from blurcore.detectors.base import Detector
from blurcore.detectors.blazeface import BlazeFaceFullRange
from blurcore.detectors.centerface import CenterFace

__all__ = ["BlazeFaceFullRange", "CenterFace", "Detector"]
