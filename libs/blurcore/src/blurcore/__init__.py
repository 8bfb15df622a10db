"""blurcore: find every face in an image or a video and anonymize it.

The library knows nothing of HTTP or task queues; the gateway, the worker and the command line are
thin shells over :class:`blurcore.pipeline.Anonymizer` (photos) and
:class:`blurcore.video.pipeline.VideoAnonymizer` (videos).

Importing this package loads no model runtime: the parameters, errors and cache key are all a
gateway needs, and ``Anonymizer`` (which brings onnxruntime and LiteRT) is imported on first use.
"""

from typing import TYPE_CHECKING, Any

from blurcore.errors import (
    AnimatedImageError,
    BlurcoreError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from blurcore.hashing import cache_key
from blurcore.params import AnonymizeParams, Mode, Profile, Shape

if TYPE_CHECKING:
    from blurcore.pipeline import Anonymizer, AnonymizeResult

_LOADED_ON_FIRST_USE = {"Anonymizer", "AnonymizeResult"}

__all__ = [
    "AnimatedImageError",
    "AnonymizeParams",
    "AnonymizeResult",
    "Anonymizer",
    "BlurcoreError",
    "ImageTooLargeError",
    "Mode",
    "Profile",
    "Shape",
    "UnsupportedImageError",
    "cache_key",
]


def __getattr__(name: str) -> Any:
    if name in _LOADED_ON_FIRST_USE:
        from blurcore import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'blurcore' has no attribute {name!r}")
