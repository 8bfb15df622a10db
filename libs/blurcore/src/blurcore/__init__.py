"""blurcore: find every face in an image and anonymize it.

The library knows nothing of HTTP or task queues; the gateway, the worker and the command line are
thin shells over :class:`blurcore.pipeline.Anonymizer`.
"""

from blurcore.errors import BlurcoreError, ImageTooLargeError, UnsupportedImageError
from blurcore.params import AnonymizeParams, Mode, Profile, Shape
from blurcore.pipeline import Anonymizer, AnonymizeResult, cache_key

__all__ = [
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
