"""Fixtures shared by every test: the real models loaded once, a real portrait, a private Redis."""

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from blurcore.pipeline import Anonymizer
from fpg_api.localstack import start_private_redis, stop_all

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private Redis on a free loopback port, keeping nothing on disk, for this test session."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = start_private_redis(url)
    try:
        yield url
    finally:
        stop_all([server])
