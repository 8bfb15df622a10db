import io
import struct
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin

from blurcore.errors import (
    AnimatedImageError,
    BlurcoreError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from blurcore.imageio import (
    DecodedImage,
    ImageFormat,
    decode,
    encode,
    inspect,
    sniff_format,
    to_rgb8,
)

from ..conftest import animated, png_declaring

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool='
    b'"phone"/></rdf:RDF></x:xmpmeta>'
)
RED_BGR = (0, 0, 255)
# Made once: a profile records when it was created.
SRGB_PROFILE: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

# How to store an upright image so that a viewer honouring each EXIF orientation shows it upright:
# the inverse of what Pillow's exif_transpose does for that orientation.
STORED_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def with_colour_space(profile: bytes, colour_space: bytes) -> bytes:
    return profile[:16] + colour_space + profile[20:]


def asymmetric_rgb(height: int = 24, width: int = 36) -> npt.NDArray[np.uint8]:
    """Gradients across and down, and a red top-left corner: every flip or turn shows."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 60)], axis=-1)
    image[:8, :8] = (255, 0, 0)
    return image.astype(np.uint8)


def save(image: Image.Image, pillow_format: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, pillow_format, **params)
    return buffer.getvalue()


def jpeg_bytes(**params: Any) -> bytes:
    return save(Image.fromarray(asymmetric_rgb()), "JPEG", **params)


def png_bytes(**params: Any) -> bytes:
    return save(Image.fromarray(asymmetric_rgb()), "PNG", **params)


def webp_bytes(**params: Any) -> bytes:
    return save(Image.fromarray(asymmetric_rgb()), "WEBP", **params)


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def exif_with_gps_and_thumbnail(thumbnail: bytes) -> bytes:
    """Little-endian EXIF: IFD0 pointing to a GPS IFD (a latitude), then IFD1 with a thumbnail.

    Written by hand because Pillow does not write IFD1.
    """

    def ifd(entries: list[tuple[int, int, int, bytes]], next_ifd: int) -> bytes:
        body = b"".join(struct.pack("<HHI", *entry[:3]) + entry[3] for entry in entries)
        return struct.pack("<H", len(entries)) + body + struct.pack("<I", next_ifd)

    ifd_size = 2 + 2 * 12 + 4
    gps_at = 8 + ifd_size
    latitude_at = gps_at + ifd_size
    ifd1_at = latitude_at + 24
    thumbnail_at = ifd1_at + ifd_size
    short, long, ascii, rational = 3, 4, 2, 5
    ifd0 = ifd(
        [
            (ExifTags.Base.Orientation, short, 1, struct.pack("<HH", 1, 0)),
            (ExifTags.IFD.GPSInfo, long, 1, struct.pack("<I", gps_at)),
        ],
        ifd1_at,
    )
    gps = ifd(
        [
            (ExifTags.GPS.GPSLatitudeRef, ascii, 2, b"N\0\0\0"),
            (ExifTags.GPS.GPSLatitude, rational, 3, struct.pack("<I", latitude_at)),
        ],
        0,
    )
    latitude = struct.pack("<6I", 48, 1, 51, 1, 29, 1)
    ifd1 = ifd(
        [
            (ExifTags.Base.JpegIFOffset, long, 1, struct.pack("<I", thumbnail_at)),
            (ExifTags.Base.JpegIFByteCount, long, 1, struct.pack("<I", len(thumbnail))),
        ],
        0,
    )
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd0 + gps + latitude + ifd1 + thumbnail
    return b"Exif\0\0" + tiff


def png_chunk_types(data: bytes) -> list[bytes]:
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of every segment before the image data."""
    segments, offset = [], 2
    while data[offset + 1] != 0xDA:
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        segments.append((marker, data[offset + 4 : offset + 2 + length]))
        offset += 2 + length
    return segments


def riff_chunk_ids(data: bytes) -> list[bytes]:
    ids, offset = [], 12
    while offset + 8 <= len(data):
        (length,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        ids.append(data[offset : offset + 4])
        offset += 8 + length + length % 2
    return ids


def webp_declaring(width: int, height: int) -> bytes:
    """An extended WebP header declaring the given canvas, with no image data worth the name."""
    vp8x = b"\0" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mean_abs_diff(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


# sniff_format and ImageFormat


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (jpeg_bytes(), ImageFormat.JPEG),
        (png_bytes(), ImageFormat.PNG),
        (webp_bytes(), ImageFormat.WEBP),
    ],
)
def test_sniff_format_recognizes_magic_bytes(data: bytes, expected: ImageFormat) -> None:
    assert sniff_format(data) is expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"\xff\xd8",
        save(Image.new("RGB", (4, 4)), "GIF"),
        save(Image.new("RGB", (4, 4)), "BMP"),
        save(Image.new("RGB", (4, 4)), "TIFF"),
        b"RIFF\x24\0\0\0WAVEfmt ",
    ],
)
def test_sniff_format_returns_none_for_other_data(data: bytes) -> None:
    assert sniff_format(data) is None


def test_image_format_gives_mime_type_and_extension() -> None:
    assert [(f.mime_type, f.extension) for f in ImageFormat] == [
        ("image/jpeg", ".jpg"),
        ("image/png", ".png"),
        ("image/webp", ".webp"),
    ]


# decode: refusals


def test_decode_refuses_empty_bytes() -> None:
    with pytest.raises(UnsupportedImageError, match="empty"):
        decode(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"hello",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        save(Image.new("RGB", (4, 4)), "GIF"),
        save(Image.new("RGB", (4, 4)), "BMP"),
        save(Image.new("RGB", (4, 4)), "TIFF"),
    ],
)
def test_decode_refuses_other_types(data: bytes) -> None:
    with pytest.raises(UnsupportedImageError, match="not a JPEG, PNG or WebP image"):
        decode(data)


@pytest.mark.parametrize(
    "data",
    [
        jpeg_bytes(),
        jpeg_bytes(progressive=True),
        png_bytes(),
        webp_bytes(),
        webp_bytes(lossless=True),
    ],
    ids=["jpeg", "progressive-jpeg", "png", "webp", "lossless-webp"],
)
@pytest.mark.parametrize("missing", [1, 2, 12, 100, "half"])
def test_decode_refuses_truncated_image(data: bytes, missing: int | str) -> None:
    cut = len(data) // 2 if missing == "half" else len(data) - int(missing)
    with pytest.raises(UnsupportedImageError, match="truncated or corrupt"):
        decode(data[:cut])


def test_decode_accepts_jpeg_with_data_after_the_image() -> None:
    # Motion photos append a video after the JPEG; none of it is written back.
    data = jpeg_bytes() + b"\0\0\0\x18ftypmp42" + bytes(4000)
    decoded = decode(data)
    assert decoded.pixels.shape == (24, 36, 3)
    assert b"ftypmp42" not in encode(decoded.pixels, decoded.format, decoded.icc_profile)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(500),
        b"\xff\xd8\xff" + np.random.default_rng(2).bytes(500),
        b"RIFF\xf8\x01\0\0WEBP" + np.random.default_rng(3).bytes(500),
        png_declaring(8, 8),
    ],
    ids=["png", "jpeg", "webp", "png-with-bad-image-data"],
)
def test_decode_refuses_garbage_after_magic_bytes(data: bytes) -> None:
    with pytest.raises(UnsupportedImageError, match="truncated or corrupt"):
        decode(data)


@pytest.mark.parametrize(
    ("data", "max_pixels", "message"),
    [
        (png_declaring(50_000, 50_000), 100_000_000, "50000x50000 = 2,500,000,000 pixels"),
        # Below Pillow's own limit; Pillow's WebP reader would allocate the canvas on opening.
        (webp_declaring(10_000, 10_000), 50_000_000, "10000x10000 = 100,000,000 pixels"),
    ],
    ids=["png", "webp"],
)
def test_decode_refuses_huge_image_before_decoding_pixels(
    monkeypatch: pytest.MonkeyPatch, data: bytes, max_pixels: int, message: str
) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(cv2, "imdecode", fail)
    with pytest.raises(
        ImageTooLargeError, match=f"{message}, more than the limit of {max_pixels:,}"
    ):
        decode(data, max_pixels=max_pixels)


def test_inspect_refuses_16_bit_rgba_at_the_pixel_limit_for_its_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 760 KB of zeros at 10000x10000 made a worker process peak at 2.4 GB, 3 GB once warm.
    monkeypatch.setattr(cv2, "imdecode", lambda *_: pytest.fail("pixels were decoded"))
    hostile = png_declaring(10_000, 10_000, bit_depth=16, colour_type=6)
    with pytest.raises(
        ImageTooLargeError,
        match="4 channel\\(s\\) of 16 bits: anonymizing it takes about 2,400,000,000 bytes of "
        "memory, more than the limit of 1,200,000,000",
    ):
        inspect(hostile, max_pixels=100_000_000)
    with pytest.raises(ImageTooLargeError):
        decode(hostile, max_pixels=100_000_000)
    assert inspect(png_declaring(10_000, 5_000, bit_depth=16, colour_type=6)).sample_bytes == 2


def _cv2_png(pixels: npt.NDArray[Any]) -> bytes:
    return bytes(cv2.imencode(".png", pixels)[1])


@pytest.mark.parametrize(
    "data",
    [
        save(Image.new("L", (4, 3)), "PNG"),
        save(Image.new("LA", (4, 3)), "PNG"),
        save(Image.new("P", (4, 3)), "PNG"),
        save(Image.new("P", (4, 3)), "PNG", transparency=0),
        save(Image.new("RGB", (4, 3)), "PNG", transparency=(0, 0, 0)),
        save(Image.new("1", (4, 3)), "PNG"),
        _cv2_png(np.zeros((3, 4), np.uint16)),
        _cv2_png(np.zeros((3, 4, 3), np.uint16)),
        _cv2_png(np.zeros((3, 4, 4), np.uint16)),
        save(Image.new("L", (4, 3)), "JPEG"),
        save(Image.new("CMYK", (4, 3)), "JPEG"),
        save(Image.new("RGB", (4, 3)), "WEBP"),  # counted as BGRA: at most what is decoded
        save(Image.new("RGBA", (4, 3)), "WEBP"),
    ],
    ids=["L", "LA", "P", "P-tRNS", "RGB-tRNS", "1-bit", "L16", "RGB16", "RGBA16", "jpeg-L",
         "jpeg-CMYK", "webp", "webp-alpha"],
)  # fmt: skip
def test_inspect_counts_at_least_the_samples_decode_gives(data: bytes) -> None:
    info, pixels = inspect(data), decode(data).pixels
    assert info.channels >= (1 if pixels.ndim == 2 else pixels.shape[2])
    assert info.sample_bytes == pixels.dtype.itemsize


def test_decode_refuses_jpeg_declaring_huge_size() -> None:
    data = bytearray(jpeg_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    with pytest.raises(ImageTooLargeError, match="60000x60000"):
        decode(bytes(data))


def test_decode_respects_max_pixels() -> None:
    data = png_bytes()
    assert decode(data, max_pixels=24 * 36).pixels.shape == (24, 36, 3)
    with pytest.raises(ImageTooLargeError, match="36x24 = 864 pixels, more than the limit of 863"):
        decode(data, max_pixels=24 * 36 - 1)


@pytest.mark.filterwarnings("error")
def test_decode_accepts_image_above_pillow_pixel_limit_without_warning() -> None:
    width = height = 10_000
    assert width * height > Image.MAX_IMAGE_PIXELS  # type: ignore[operator]
    data = save(Image.new("1", (width, height)), "PNG")
    assert decode(data).pixels.shape == (height, width)


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # damaged EXIF
@settings(max_examples=150, deadline=None)
@given(
    source=st.sampled_from(
        [
            jpeg_bytes(exif=exif_with_orientation(6)),
            png_bytes(),
            webp_bytes(),
            webp_bytes(lossless=True),
        ]
    ),
    changes=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    keep=st.floats(min_value=0.0, max_value=1.0),
)
def test_decode_raises_only_blurcore_errors_on_damaged_bytes(
    source: bytes, changes: list[tuple[int, int]], keep: float
) -> None:
    data = bytearray(source[: max(1, int(len(source) * keep))] if keep < 0.9 else source)
    for position, value in changes:
        data[position % len(data)] = value
    try:
        decoded = decode(bytes(data), max_pixels=10_000)
    except BlurcoreError:
        return
    assert decoded.pixels.flags.c_contiguous


# decode: layouts, orientation, colour profiles


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(
    ("pillow_format", "params", "tolerance"),
    [("PNG", {}, 0.0), ("WEBP", {"lossless": True}, 0.0), ("JPEG", {"quality": 95}, 3.0)],
    ids=["png", "webp", "jpeg"],
)
def test_decode_applies_exif_orientation(
    orientation: int, pillow_format: str, params: dict[str, Any], tolerance: float
) -> None:
    upright = asymmetric_rgb()
    stored = Image.fromarray(upright)
    if (transpose := STORED_FOR_ORIENTATION[orientation]) is not None:
        stored = stored.transpose(transpose)
    data = save(stored, pillow_format, exif=exif_with_orientation(orientation), **params)
    as_pillow_shows_it = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert mean_abs_diff(as_pillow_shows_it, upright) <= tolerance

    pixels = decode(data).pixels

    assert pixels.shape == (24, 36, 3)
    assert pixels.flags.c_contiguous
    assert mean_abs_diff(pixels[..., ::-1], upright) <= tolerance


@pytest.mark.parametrize("exif", [b"Exif\0\0not a tiff header", b"Exif\0\0II*\0\x08"])
def test_decode_ignores_unreadable_exif(exif: bytes) -> None:
    data = png_bytes(exif=exif)
    assert np.array_equal(decode(data).pixels[..., ::-1], asymmetric_rgb())


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # damaged EXIF
@settings(max_examples=200, deadline=None)
@given(
    changes=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    keep=st.integers(min_value=1),
)
def test_decode_survives_damaged_exif(changes: list[tuple[int, int]], keep: int) -> None:
    exif = bytearray(exif_with_gps_and_thumbnail(jpeg_bytes()))
    for position, value in changes:
        exif[position % len(exif)] = value
    # An orientation damaged into another valid value may turn the image; nothing else may fail.
    shape = decode(png_bytes(exif=bytes(exif[: keep % len(exif) + 1]))).pixels.shape
    assert shape in {(24, 36, 3), (36, 24, 3)}


def test_decode_keeps_grayscale_as_two_dimensional() -> None:
    gray = asymmetric_rgb()[..., 0]
    decoded = decode(save(Image.fromarray(gray), "PNG"))
    assert decoded.pixels.dtype == np.uint8
    assert np.array_equal(decoded.pixels, gray)


def test_decode_reads_palette_png_as_bgr_and_with_transparency_as_bgra() -> None:
    palette = Image.fromarray(asymmetric_rgb()).quantize(colors=16)
    expected_bgr = np.asarray(palette.convert("RGB"))[..., ::-1]

    opaque = decode(save(palette, "PNG")).pixels
    transparent = decode(save(palette, "PNG", transparency=0)).pixels

    assert np.array_equal(opaque, expected_bgr)
    assert transparent.shape == (24, 36, 4)
    assert np.array_equal(transparent[..., :3], expected_bgr)
    assert set(np.unique(transparent[..., 3])) == {0, 255}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (jpeg_bytes(icc_profile=SRGB_PROFILE), ImageFormat.JPEG),
        (png_bytes(icc_profile=SRGB_PROFILE), ImageFormat.PNG),
        (webp_bytes(icc_profile=SRGB_PROFILE), ImageFormat.WEBP),
    ],
)
def test_decode_reads_format_and_icc_profile(data: bytes, expected: ImageFormat) -> None:
    decoded = decode(data)
    assert decoded.format is expected
    assert decoded.icc_profile == SRGB_PROFILE


def test_decode_gives_no_icc_profile_when_none_is_embedded() -> None:
    assert decode(png_bytes()).icc_profile is None


@pytest.mark.parametrize(
    ("image", "pillow_format", "colour_space", "kept"),
    [
        (Image.new("L", (8, 8)), "PNG", b"GRAY", True),
        (Image.new("LA", (8, 8)), "PNG", b"GRAY", False),  # OpenCV gives BGRA
        (Image.new("CMYK", (8, 8)), "JPEG", b"CMYK", False),  # OpenCV gives BGR
        (Image.new("RGB", (8, 8)), "PNG", b"GRAY", False),
    ],
    ids=["gray", "gray-with-alpha", "cmyk", "mismatched"],
)
def test_decode_keeps_icc_profile_only_if_it_fits_the_pixels(
    image: Image.Image, pillow_format: str, colour_space: bytes, kept: bool
) -> None:
    profile = with_colour_space(SRGB_PROFILE, colour_space)
    decoded = decode(save(image, pillow_format, icc_profile=profile))
    assert decoded.icc_profile == (profile if kept else None)


# encode: metadata


def test_encode_jpeg_strips_all_metadata_but_icc_profile() -> None:
    thumbnail = save(Image.new("RGB", (8, 8), "blue"), "JPEG")
    data = jpeg_bytes(
        exif=exif_with_gps_and_thumbnail(thumbnail),
        xmp=XMP,
        comment=b"taken at home",
        icc_profile=SRGB_PROFILE,
    )
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert {"xmp", "comment"} <= set(source.info)
    assert thumbnail in data

    decoded = decode(data)
    output = encode(decoded.pixels, decoded.format, decoded.icc_profile)

    reread = Image.open(io.BytesIO(output))
    assert reread.format == "JPEG"
    assert not reread.getexif()
    assert not {"exif", "xmp", "comment"} & set(reread.info)
    assert reread.info["icc_profile"] == SRGB_PROFILE
    for leak in (b"Exif", b"http://ns.adobe.com/xap", b"taken at home", thumbnail[20:60]):
        assert leak not in output
    app0_jfif, app2_icc = 0xE0, 0xE2
    for marker, payload in jpeg_segments(output):
        assert marker not in range(0xE0, 0xF0) or (marker, payload[:4]) in {
            (app0_jfif, b"JFIF"),
            (app2_icc, b"ICC_"),
        }
        assert marker != 0xFE  # COM


def test_encode_png_strips_all_metadata_but_icc_profile() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Jane Doe")
    text.add_itxt("XML:com.adobe.xmp", XMP.decode())
    text.add_text("Comment", "taken at home", zip=True)
    data = png_bytes(pnginfo=text, exif=exif_with_orientation(1), icc_profile=SRGB_PROFILE)
    assert {b"tEXt", b"iTXt", b"zTXt", b"eXIf"} <= set(png_chunk_types(data))

    decoded = decode(data)
    output = encode(decoded.pixels, decoded.format, decoded.icc_profile)

    assert png_chunk_types(output) == [b"IHDR", b"iCCP", b"IDAT", b"IEND"]
    reread = Image.open(io.BytesIO(output))
    assert reread.info["icc_profile"] == SRGB_PROFILE
    assert np.array_equal(np.asarray(reread), asymmetric_rgb())


def test_encode_webp_strips_all_metadata_but_icc_profile() -> None:
    data = webp_bytes(exif=exif_with_orientation(1), xmp=XMP, icc_profile=SRGB_PROFILE)
    assert {b"EXIF", b"XMP "} <= set(riff_chunk_ids(data))

    decoded = decode(data)
    output = encode(decoded.pixels, decoded.format, decoded.icc_profile)

    assert set(riff_chunk_ids(output)) <= {b"VP8X", b"ICCP", b"VP8 ", b"ALPH"}
    reread = Image.open(io.BytesIO(output))
    assert not {"exif", "xmp"} & set(reread.info)
    assert reread.info["icc_profile"] == SRGB_PROFILE


@pytest.mark.parametrize("image_format", list(ImageFormat))
def test_encode_writes_no_icc_profile_when_given_none(image_format: ImageFormat) -> None:
    output = encode(asymmetric_rgb()[..., ::-1], image_format, None)
    assert sniff_format(output) is image_format
    assert "icc_profile" not in Image.open(io.BytesIO(output)).info


# encode: round trips of every layout


def round_trip(pixels: npt.NDArray[Any], image_format: ImageFormat) -> DecodedImage:
    return decode(encode(pixels, image_format, None))


def test_round_trip_preserves_grayscale_png() -> None:
    gray = asymmetric_rgb()[..., 1]
    assert np.array_equal(round_trip(gray, ImageFormat.PNG).pixels, gray)


def test_round_trip_preserves_bgra_png() -> None:
    bgra = np.dstack([asymmetric_rgb()[..., ::-1], np.arange(24 * 36).reshape(24, 36) % 256])
    bgra = bgra.astype(np.uint8)
    assert np.array_equal(round_trip(bgra, ImageFormat.PNG).pixels, bgra)


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_round_trip_preserves_16_bit_png_with_icc_profile(channels: int | None) -> None:
    rng = np.random.default_rng(channels)
    shape = (24, 36) if channels is None else (24, 36, channels)
    pixels = rng.integers(0, 65536, shape, dtype=np.uint16)
    profile = SRGB_PROFILE if channels else with_colour_space(SRGB_PROFILE, b"GRAY")

    output = encode(pixels, ImageFormat.PNG, profile)
    decoded = decode(output)

    assert decoded.pixels.dtype == np.uint16
    assert np.array_equal(decoded.pixels, pixels)
    assert decoded.icc_profile == profile
    assert png_chunk_types(output) == [b"IHDR", b"iCCP", b"IDAT", b"IEND"]
    Image.open(io.BytesIO(output)).verify()  # checks every chunk's CRC


def test_encode_16_bit_png_without_icc_profile_has_no_iccp_chunk() -> None:
    output = encode(np.zeros((4, 4, 3), np.uint16), ImageFormat.PNG, None)
    assert png_chunk_types(output) == [b"IHDR", b"IDAT", b"IEND"]


@pytest.mark.parametrize("image_format", [ImageFormat.JPEG, ImageFormat.WEBP])
def test_encode_scales_16_bit_down_for_jpeg_and_webp(image_format: ImageFormat) -> None:
    pixels16 = asymmetric_rgb()[..., ::-1].astype(np.uint16) * 257
    decoded = round_trip(pixels16, image_format)
    assert decoded.pixels.dtype == np.uint8
    assert mean_abs_diff(decoded.pixels, asymmetric_rgb()[..., ::-1]) < 4


def test_round_trip_keeps_jpeg_close_and_grayscale_gray() -> None:
    bgr = asymmetric_rgb()[..., ::-1]
    assert mean_abs_diff(round_trip(bgr, ImageFormat.JPEG).pixels, bgr) < 4
    gray = round_trip(bgr[..., 1], ImageFormat.JPEG).pixels
    assert gray.ndim == 2
    assert mean_abs_diff(gray, bgr[..., 1]) < 4


def test_encode_jpeg_drops_alpha() -> None:
    bgr = asymmetric_rgb()[..., ::-1]
    bgra = np.dstack([bgr, np.zeros((24, 36), np.uint8)])
    decoded = round_trip(bgra, ImageFormat.JPEG)
    assert decoded.pixels.shape == (24, 36, 3)
    assert mean_abs_diff(decoded.pixels, bgr) < 4


def test_round_trip_keeps_webp_close() -> None:
    bgr = asymmetric_rgb()[..., ::-1]
    decoded = round_trip(bgr, ImageFormat.WEBP)
    assert decoded.pixels.shape == (24, 36, 3)
    assert mean_abs_diff(decoded.pixels, bgr) < 4


def test_round_trip_keeps_webp_alpha() -> None:
    bgr = asymmetric_rgb()[..., ::-1]
    alpha = np.where(np.arange(36) < 18, 255, 0).astype(np.uint8)[None, :].repeat(24, axis=0)
    decoded = round_trip(np.dstack([bgr, alpha]), ImageFormat.WEBP)
    assert decoded.pixels.shape == (24, 36, 4)
    assert np.array_equal(decoded.pixels[..., 3], alpha)
    assert mean_abs_diff(decoded.pixels[:, :18, :3], bgr[:, :18]) < 4


@pytest.mark.parametrize("quality", [0, 101])
def test_encode_refuses_quality_out_of_range(quality: int) -> None:
    with pytest.raises(ValueError, match="jpeg_quality"):
        encode(asymmetric_rgb(), ImageFormat.JPEG, None, jpeg_quality=quality)


def test_encode_lower_jpeg_quality_gives_smaller_file() -> None:
    bgr = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    low = encode(bgr, ImageFormat.JPEG, None, jpeg_quality=50)
    assert len(low) < len(encode(bgr, ImageFormat.JPEG, None, jpeg_quality=95))


# to_rgb8


@pytest.mark.parametrize(
    "pixels",
    [
        np.full((2, 3, 3), RED_BGR, np.uint8),
        np.full((2, 3, 4), (*RED_BGR, 0), np.uint8),
        np.full((2, 3, 3), RED_BGR, np.uint16) * 257,
        np.full((2, 3, 4), (*RED_BGR, 65535), np.uint16) * 257,
    ],
    ids=["bgr8", "bgra8", "bgr16", "bgra16"],
)
def test_to_rgb8_gives_red_for_red_bgr(pixels: npt.NDArray[Any]) -> None:
    rgb = to_rgb8(pixels)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous
    assert rgb.shape == (2, 3, 3)
    assert (rgb == (255, 0, 0)).all()


@pytest.mark.parametrize(
    ("pixels", "level"),
    [(np.full((2, 3), 77, np.uint8), 77), (np.full((2, 3), 0x4DFF, np.uint16), 0x4D)],
    ids=["gray8", "gray16"],
)
def test_to_rgb8_expands_grayscale(pixels: npt.NDArray[Any], level: int) -> None:
    rgb = to_rgb8(pixels)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (2, 3, 3)
    assert (rgb == level).all()


def test_to_rgb8_matches_pillow_on_decoded_image() -> None:
    data = png_bytes()
    assert np.array_equal(to_rgb8(decode(data).pixels), np.asarray(Image.open(io.BytesIO(data))))


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((2, 3, 2), np.uint8), np.zeros((2, 3, 1), np.uint8), np.zeros((2, 3), np.float32)],
    ids=["two-channels", "one-channel-axis", "float"],
)
def test_to_rgb8_and_encode_refuse_other_layouts(pixels: npt.NDArray[Any]) -> None:
    with pytest.raises(ValueError, match="expected HxW"):
        to_rgb8(pixels)
    with pytest.raises(ValueError, match="expected HxW"):
        encode(pixels, ImageFormat.PNG, None)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_animated_images_are_refused_naming_their_frames(image_format: str) -> None:
    data = animated(image_format, frames=3)
    with pytest.raises(AnimatedImageError, match="3 frames"):
        inspect(data)
    with pytest.raises(AnimatedImageError):
        decode(data)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_an_animation_of_one_frame_is_a_still_image(image_format: str) -> None:
    assert decode(animated(image_format, frames=1)).pixels.shape[:2] == (32, 32)
