"""The detector interface every backend implements."""

import hashlib
import threading
from abc import ABC, abstractmethod
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from blurcore.boxes import Boxes

RGBImage = npt.NDArray[np.uint8]


def bundled_model(filename: str) -> Path:
    """Path of a model file shipped inside the package (no network, ever)."""
    return Path(str(resources.files("blurcore") / "models" / filename))


class Detector(ABC):
    """Finds faces in an RGB uint8 image; boxes come back in that image's pixels.

    ``load()`` builds the runtime once (it is slow and not fork-safe: call it in the process that
    will use it); ``detect`` loads lazily if nobody did.
    """

    name: str
    model_path: Path

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._load_lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def detect(self, image: RGBImage, confidence: float) -> Boxes:
        if not self._loaded:
            self.load()
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        return self._detect(image, confidence)

    @cached_property
    def model_sha256(self) -> str:
        return hashlib.sha256(self.model_path.read_bytes()).hexdigest()

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _detect(self, image: RGBImage, confidence: float) -> Boxes: ...
