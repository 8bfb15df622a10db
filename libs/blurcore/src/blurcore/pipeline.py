"""Bytes in, anonymized bytes out: the one entry point the command line and the services call."""

from dataclasses import dataclass

import cv2

from blurcore import imageio
from blurcore.anonymize import anonymize
from blurcore.boxes import Boxes, clip, grow, pad
from blurcore.finder import Candidates, FaceFinder
from blurcore.hashing import sha256_hex
from blurcore.imageio import DEFAULT_MAX_PIXELS, DecodedImage, ImageFormat, Pixels
from blurcore.params import AnonymizeParams, Profile


@dataclass(frozen=True)
class AnonymizeResult:
    data: bytes
    format: ImageFormat
    width: int
    height: int
    detections: (
        Boxes  # the detectors' face boxes, in the pixels of the upright (EXIF-rotated) image
    )
    regions: Boxes  # the same boxes padded and clipped to the image: where anonymization happened
    outlines: (
        Boxes  # the padded boxes before clipping, whose shape (cut at the edge) was anonymized
    )
    input_sha256: str
    output_sha256: str

    @property
    def faces(self) -> int:
        return len(self.detections)


class Anonymizer:
    """Holds loaded detectors; create one per process, after any fork, and reuse it."""

    def __init__(self, threads: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        """``threads``: how many threads the detectors and OpenCV's image operations use; None
        leaves both at every core. One process per core wants 1: OpenCV's thread pool is
        process-wide and sized to every core, so N processes would otherwise run N threads per
        core between them.
        """
        if threads is not None:
            cv2.setNumThreads(threads)
        self.threads = threads
        self.finder = FaceFinder(threads)
        self.max_pixels = max_pixels

    def load(self, profiles: tuple[Profile, ...] = tuple(Profile)) -> None:
        self.finder.load(profiles)

    def find_faces(self, pixels: Pixels, params: AnonymizeParams) -> Boxes:
        """The face boxes (unpadded) in ``pixels``, an upright image."""
        return self.finder.find(imageio.to_rgb8(pixels), params)

    def find_candidates(self, pixels: Pixels, params: AnonymizeParams) -> Candidates:
        """The face boxes and the weak boxes beside them in a video frame (see
        :meth:`blurcore.finder.FaceFinder.find_candidates`)."""
        return self.finder.find_candidates(imageio.to_rgb8(pixels), params)

    def detect(self, image: DecodedImage, params: AnonymizeParams) -> tuple[Boxes, Boxes]:
        """The face boxes, and the padded regions that anonymization covers, in image pixels."""
        faces = self.find_faces(image.pixels, params)
        height, width = image.pixels.shape[:2]
        return faces, pad(faces, params.padding, width, height)

    def process(self, data: bytes, params: AnonymizeParams) -> AnonymizeResult:
        """Decode, find faces, anonymize and re-encode in the same format without metadata.

        Raises a :class:`blurcore.BlurcoreError` subclass for input it cannot read; never returns
        the original pixels.
        """
        image = imageio.decode(data, max_pixels=self.max_pixels)
        detections = self.find_faces(image.pixels, params)
        outlines = grow(detections, params.padding)
        pixels = anonymize(image.pixels, outlines, params)
        output = imageio.encode(pixels, image.format, image.icc_profile, params.jpeg_quality)
        height, width = pixels.shape[:2]
        regions = clip(outlines, width, height)
        return AnonymizeResult(
            data=output,
            format=image.format,
            width=width,
            height=height,
            detections=detections,
            regions=regions,
            outlines=outlines,
            input_sha256=sha256_hex(data),
            output_sha256=sha256_hex(output),
        )
