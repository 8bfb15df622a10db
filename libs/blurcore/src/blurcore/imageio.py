"""Read image bytes as people send them, and write anonymized pixels back without metadata.

Reading is split in two. The header comes first and alone: Pillow (or, for WebP, a few lines
here) tells the size, the channels, the bit depth, the colour profile and the EXIF orientation
without decoding a pixel, so an image declaring more pixels than allowed, or pixels heavier than
the memory budget allows (``blurcore.image_memory``), is refused before any memory is spent on
it. The pixels then come from OpenCV, because ``cv2.imdecode`` keeps grayscale, alpha and 16-bit
samples, is fast, and hands back the BGR(A) arrays the rest of the library works on.

Writing goes through Pillow, which writes exactly what it is given: no EXIF (GPS, thumbnail),
XMP, IPTC, comments or text chunks, only the ICC profile so colours stay right. Whatever else the
input carried (motion-photo video, gain maps, extra MPO frames after the main JPEG) is gone too,
since only the pixels are written. Pillow cannot write 16-bit colour PNGs, so those go through
OpenCV, with the ICC profile spliced in by hand.
"""

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, JpegImagePlugin, PngImagePlugin

from blurcore.errors import AnimatedImageError, ImageTooLargeError, UnsupportedImageError
from blurcore.image_memory import memory_budget, working_memory_bytes

Pixels = npt.NDArray[np.uint8 | np.uint16]
"""OpenCV layout: HxW (grayscale), HxWx3 (BGR) or HxWx4 (BGRA), uint8 or uint16."""

DEFAULT_MAX_PIXELS = 100_000_000
_NOT_AN_IMAGE = "not a JPEG, PNG or WebP image"
_CORRUPT = "image data is truncated or corrupt"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR_END = len(_PNG_SIGNATURE) + 4 + 4 + 13 + 4  # length, type, body, CRC
_PNG_BIT_DEPTH_AT = len(_PNG_SIGNATURE) + 4 + 4 + 8  # after the width and height; colour type next
# Channels OpenCV decodes each PNG colour type to: grey, RGB, palette (as BGR), grey and alpha (as
# BGRA), RGBA. RGB and palette images with a transparent colour come out BGRA.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}
_PNG_TRANSPARENCY_TO_ALPHA = frozenset({2, 3})
_EXIF_ORIENTATION = 0x0112
# OpenCV's default PNG level: on the dev PNGs, 4.7x faster to write than Pillow's level 6, for
# files 5% larger.
_PNG_COMPRESS_LEVEL = 1
# Pillow raises any of these, rather than one error type, on data it cannot parse.
_PILLOW_PARSE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, zlib.error)


class ImageFormat(StrEnum):
    # Member names double as Pillow's format names.
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"

    @property
    def mime_type(self) -> str:
        return f"image/{self.value}"

    @property
    def extension(self) -> str:
        return ".jpg" if self is ImageFormat.JPEG else f".{self.value}"


@dataclass(frozen=True)
class DecodedImage:
    pixels: Pixels
    """C-contiguous, in OpenCV layout, already turned upright by its EXIF orientation."""
    format: ImageFormat
    icc_profile: bytes | None
    """The embedded colour profile, to be written back with the anonymized pixels."""


@dataclass(frozen=True)
class _Header:
    width: int
    height: int
    icc_profile: bytes | None
    exif: bytes | None
    channels: int
    """Of the pixels as OpenCV decodes them, which is what the memory is spent on."""
    sample_bytes: int


def sniff_format(data: bytes) -> ImageFormat | None:
    """The format named by the magic bytes at the start of ``data``, if it is one we read."""
    if data.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if data.startswith(_PNG_SIGNATURE):
        return ImageFormat.PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    return None


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int
    height: int
    channels: int
    """Of the pixels as ``decode`` will give them, as are the bytes of a sample."""
    sample_bytes: int


def _checked_header(data: bytes, max_pixels: int) -> tuple[ImageFormat, _Header]:
    if not data:
        raise UnsupportedImageError("image is empty")
    format = sniff_format(data)
    if format is None:
        raise UnsupportedImageError(_NOT_AN_IMAGE)
    header = _read_header(data, format)
    if header.width * header.height > max_pixels:
        raise ImageTooLargeError(
            f"image is {header.width}x{header.height} = {header.width * header.height:,} pixels, "
            f"more than the limit of {max_pixels:,}"
        )
    needed = working_memory_bytes(header.width, header.height, header.channels, header.sample_bytes)
    if needed > memory_budget(max_pixels):
        raise ImageTooLargeError(
            f"image is {header.width}x{header.height} with {header.channels} channel(s) of "
            f"{8 * header.sample_bytes} bits: anonymizing it takes about {needed:,} bytes of "
            f"memory, more than the limit of {memory_budget(max_pixels):,} (that of 8-bit RGBA "
            f"at {max_pixels:,} pixels)"
        )
    return format, header


def inspect(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Format and size from the header alone, with the same refusals as ``decode`` makes before
    it decodes: cheap enough for a gateway to answer a bad upload at once."""
    format, header = _checked_header(data, max_pixels)
    return ImageInfo(format, header.width, header.height, header.channels, header.sample_bytes)


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode a JPEG, PNG or WebP image, upright as a phone shows it.

    Raises UnsupportedImageError for anything else, including truncated or corrupt files, and
    ImageTooLargeError, before decoding, when the header declares more than ``max_pixels``.
    """
    format, header = _checked_header(data, max_pixels)
    # OpenCV 5 refuses a truncated JPEG (4.x filled its missing part grey): no check of our own.
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.shape[:2] != (header.height, header.width):
        raise UnsupportedImageError(_CORRUPT)
    # IMREAD_UNCHANGED gives uint8 samples, or uint16 for 16-bit PNGs.
    pixels = cast(Pixels, decoded)
    icc_profile = header.icc_profile
    if not icc_profile or not _profile_describes(icc_profile, pixels):
        icc_profile = None
    upright = _UPRIGHT.get(_orientation(header.exif), _unchanged)(pixels)
    return DecodedImage(np.ascontiguousarray(upright), format, icc_profile)


def encode(
    pixels: Pixels, format: ImageFormat, icc_profile: bytes | None, jpeg_quality: int = 90
) -> bytes:
    """Encode pixels in OpenCV layout with no metadata but the ICC profile, when one is given.

    JPEG drops alpha, since it cannot hold it. 16-bit pixels stay 16-bit in PNG and are scaled
    to 8 bits for JPEG and WebP. WebP is always lossy, at ``jpeg_quality``, with alpha kept.
    """
    _require_layout(pixels)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be within 1..100, got {jpeg_quality}")
    if format is ImageFormat.PNG:
        return _encode_png(pixels, icc_profile)
    eight_bit = _as_uint8(pixels)
    if (
        format is ImageFormat.JPEG
        and not icc_profile
        and (eight_bit.ndim == 2 or eight_bit.shape[2] == 3)
    ):
        # OpenCV writes a bare JFIF header from the BGR pixels as they are; Pillow would need
        # them converted to RGB and copied first (a third of the fast profile's encode time).
        return _opencv_encode(".jpg", eight_bit, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    options: dict[str, object] = {"quality": jpeg_quality}
    if icc_profile:
        options["icc_profile"] = icc_profile
    keep_alpha = format is not ImageFormat.JPEG
    buffer = io.BytesIO()
    _to_pillow(eight_bit, keep_alpha).save(buffer, format=format.name, **options)
    return buffer.getvalue()


_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}  # by channel count


def to_rgb8(pixels: Pixels) -> npt.NDArray[np.uint8]:
    """Any decoded layout as a contiguous HxWx3 uint8 RGB array, the input the detectors take.

    Alpha is dropped rather than composited, so a face hidden under transparent pixels is still
    seen by the detectors: it is still in the pixels that get written back.
    """
    _require_layout(pixels)
    eight_bit = _as_uint8(pixels)
    # cvtColor rather than a reversed numpy view made contiguous: ten times faster.
    channels = 1 if eight_bit.ndim == 2 else eight_bit.shape[2]
    return np.asarray(cv2.cvtColor(eight_bit, _TO_RGB[channels]), np.uint8)


def _read_header(data: bytes, format: ImageFormat) -> _Header:
    if format is ImageFormat.WEBP:
        return _read_webp_header(data)
    # The format's own class rather than Image.open: Image.open adds Pillow's global pixel limit,
    # whose warnings can only be silenced process-wide; the limit that matters is max_pixels.
    image_class = (
        JpegImagePlugin.JpegImageFile if format is ImageFormat.JPEG else PngImagePlugin.PngImageFile
    )
    try:
        image = image_class(io.BytesIO(data))
    except _PILLOW_PARSE_ERRORS as error:
        raise UnsupportedImageError(_CORRUPT) from error
    width, height = image.size
    # An APNG's frame count is in its acTL chunk, which Pillow reads on open.
    _require_still(getattr(image, "n_frames", 1))
    if format is ImageFormat.JPEG:  # 8-bit; CMYK comes out BGR
        channels, sample_bytes = (1 if image.mode == "L" else 3), 1
    else:
        colour_type = data[_PNG_BIT_DEPTH_AT + 1]
        channels = _PNG_CHANNELS.get(colour_type, 4)
        if colour_type in _PNG_TRANSPARENCY_TO_ALPHA and "transparency" in image.info:
            channels = 4
        sample_bytes = 2 if data[_PNG_BIT_DEPTH_AT] == 16 else 1
    return _Header(
        width, height, image.info.get("icc_profile"), image.info.get("exif"), channels, sample_bytes
    )


def _read_webp_header(data: bytes) -> _Header:
    # Pillow's WebP reader allocates the whole canvas as soon as it opens a file, so the size
    # has to be read here first; the RIFF chunks are simple enough to read for the rest.
    chunks = dict(_riff_chunks(data))
    extended, lossless, lossy = (
        chunks.get(b"VP8X", b""),
        chunks.get(b"VP8L", b""),
        chunks.get(b"VP8 ", b""),
    )
    if len(extended) >= 10:  # flags, reserved, then the canvas size less one, in 24 bits each
        width, height = 1 + _uint_le(extended[4:7]), 1 + _uint_le(extended[7:10])
    elif len(lossless) >= 5 and lossless[0] == 0x2F:  # signature, then sizes less one, 14 bits
        bits = _uint_le(lossless[1:5])
        width, height = 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
    elif len(lossy) >= 10 and lossy[3:6] == b"\x9d\x01\x2a":  # frame tag, start code, sizes
        width, height = _uint_le(lossy[6:8]) & 0x3FFF, _uint_le(lossy[8:10]) & 0x3FFF
    else:
        raise UnsupportedImageError(_CORRUPT)
    _require_still(sum(1 for name, _body in _riff_chunks(data) if name == b"ANMF"))
    # Counted with alpha whether or not it has any: OpenCV decodes 8-bit BGR or BGRA.
    return _Header(width, height, chunks.get(b"ICCP"), chunks.get(b"EXIF"), 4, 1)


def _require_still(frames: int) -> None:
    if frames > 1:
        raise AnimatedImageError(
            f"animated image of {frames} frames: only still images are anonymized, and keeping "
            "the first frame alone would drop the others unseen; export the frames as stills"
        )


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    offset = 12
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset + 4 : offset + 8], "little")
        yield data[offset : offset + 4], data[offset + 8 : offset + 8 + length]
        offset += 8 + length + length % 2


def _uint_le(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    parsed = Image.Exif()
    try:
        parsed.load(exif)
    except _PILLOW_PARSE_ERRORS:
        # Viewers ignore EXIF they cannot read and show the stored pixels, and so do we.
        return 1
    orientation = parsed.get(_EXIF_ORIENTATION, 1)
    return orientation if isinstance(orientation, int) else 1


def _unchanged(pixels: Pixels) -> Pixels:
    return pixels


# What turns the stored pixels upright, for each EXIF orientation; 1 and unknown values need
# nothing. numpy's rot90 turns counter-clockwise.
_UPRIGHT: dict[int, Callable[[Pixels], Pixels]] = {
    2: lambda pixels: pixels[:, ::-1],
    3: lambda pixels: pixels[::-1, ::-1],
    4: lambda pixels: pixels[::-1],
    5: lambda pixels: pixels.swapaxes(0, 1),
    6: lambda pixels: np.rot90(pixels, -1),
    7: lambda pixels: pixels.swapaxes(0, 1)[::-1, ::-1],
    8: lambda pixels: np.rot90(pixels, 1),
}


def _profile_describes(profile: bytes, pixels: Pixels) -> bool:
    # An ICC profile names its colour space at bytes 16-20. OpenCV turns CMYK JPEGs into BGR
    # and grey-with-alpha PNGs into BGRA, after which their profile no longer fits the pixels.
    return profile[16:20] == (b"GRAY" if pixels.ndim == 2 else b"RGB ")


def _require_layout(pixels: Pixels) -> None:
    shape_ok = pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))
    if not shape_ok or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            "expected HxW, HxWx3 or HxWx4 pixels of uint8 or uint16, "
            f"got shape {pixels.shape} of {pixels.dtype}"
        )


def _as_uint8(pixels: Pixels) -> npt.NDArray[np.uint8]:
    if pixels.dtype == np.uint16:
        return (pixels >> 8).astype(np.uint8)
    return pixels.astype(np.uint8, copy=False)


def _to_pillow(pixels: npt.NDArray[np.uint8], keep_alpha: bool) -> Image.Image:
    if pixels.ndim == 2:
        return Image.fromarray(pixels)
    if pixels.shape[2] == 4 and keep_alpha:
        return Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA))
    return Image.fromarray(to_rgb8(pixels))


def _encode_png(pixels: Pixels, icc_profile: bytes | None) -> bytes:
    """OpenCV writes no metadata chunk at all, and keeps 16-bit samples; the colour profile
    goes in by hand."""
    png = _opencv_encode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESS_LEVEL])
    if not icc_profile:
        return png
    # iCCP must precede the image data; right after IHDR, which is always first, is the place.
    body = b"ICC Profile\0\0" + zlib.compress(icc_profile)  # name, separator, method 0 (zlib)
    chunk = len(body).to_bytes(4, "big") + b"iCCP" + body
    chunk += zlib.crc32(b"iCCP" + body).to_bytes(4, "big")
    return png[:_PNG_IHDR_END] + chunk + png[_PNG_IHDR_END:]


def _opencv_encode(extension: str, pixels: Pixels, options: list[int]) -> bytes:
    ok, buffer = cv2.imencode(extension, pixels, options)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape} {pixels.dtype} {extension}")
    return bytes(buffer.tobytes())
