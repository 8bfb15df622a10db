"""Fixtures shared by the blurcore tests: the real models, loaded once, and a real portrait."""

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from blurcore.pipeline import Anonymizer

SHARED_FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"


@pytest.fixture(scope="session")
def anonymizer() -> Anonymizer:
    loaded = Anonymizer(threads=1)
    loaded.load()
    return loaded


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    """scikit-image's astronaut portrait (NASA, public domain) as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    if not (SHARED_FACES / "dev" / "annotations.json").is_file():
        pytest.skip(f"evaluation data absent: {SHARED_FACES} (see its README); skipping")
    return SHARED_FACES / "dev"


def decode_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
