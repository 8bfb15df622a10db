import io

import cv2
import numpy as np
import pytest
from PIL import Image

from blurcore import AnonymizeParams, ImageTooLargeError, UnsupportedImageError, cache_key
from blurcore.anonymize import region_mask
from blurcore.boxes import iou_matrix
from blurcore.evaluation import evaluate, load_samples
from blurcore.hashing import cache_key_of_digest, sha256_hex
from blurcore.imageio import ImageFormat
from blurcore.params import Profile, Shape
from blurcore.pipeline import Anonymizer

from ..conftest import decode_rgb


def test_process_blurs_face_and_keeps_background(anonymizer, astronaut_jpeg):
    result = anonymizer.process(astronaut_jpeg, AnonymizeParams())
    assert result.format is ImageFormat.JPEG
    assert result.faces >= 1
    before = decode_rgb(astronaut_jpeg).astype(np.int16)
    after = decode_rgb(result.data).astype(np.int16)
    inside = region_mask(result.regions, result.height, result.width, Shape.ELLIPSE)
    difference = np.abs(after - before).mean(axis=2)
    assert difference[inside].mean() > 15
    assert difference[~inside].mean() < 3  # only JPEG re-encoding noise outside the face


@pytest.mark.parametrize("profile", list(Profile))
def test_every_profile_with_its_defaults_finds_a_clear_portrait(
    anonymizer, astronaut_jpeg, profile
):
    """A profile that finds nothing on a clear, frontal, well-lit face would be a way to switch
    anonymization off; the CLI and the service start from these defaults."""
    result = anonymizer.process(astronaut_jpeg, AnonymizeParams(profile=profile))
    assert result.faces == 1


def test_process_reports_hashes_of_the_real_bytes(anonymizer, astronaut_jpeg):
    result = anonymizer.process(astronaut_jpeg, AnonymizeParams(profile=Profile.FAST))
    assert result.input_sha256 == sha256_hex(astronaut_jpeg)
    assert result.output_sha256 == sha256_hex(result.data)
    assert result.output_sha256 != result.input_sha256


def test_process_blurred_output_holds_no_detectable_face(anonymizer, astronaut_jpeg):
    params = AnonymizeParams()
    first = anonymizer.process(astronaut_jpeg, params)
    second = anonymizer.process(first.data, params)
    assert first.faces >= 1
    # None of the blurred faces is found again (a stray low score elsewhere is not a face).
    assert (
        len(second.detections) == 0 or iou_matrix(second.detections, first.detections).max() < 0.1
    )


def test_process_keeps_format_for_png_and_webp(anonymizer, astronaut_jpeg):
    portrait = Image.open(io.BytesIO(astronaut_jpeg))
    for name, expected in (("PNG", ImageFormat.PNG), ("WEBP", ImageFormat.WEBP)):
        buffer = io.BytesIO()
        portrait.save(buffer, format=name)
        result = anonymizer.process(buffer.getvalue(), AnonymizeParams())
        assert result.format is expected
        assert Image.open(io.BytesIO(result.data)).format == name
        assert result.faces >= 1


def test_process_finds_face_in_rotated_phone_photo(anonymizer, astronaut_jpeg):
    # Stored sideways with EXIF orientation 6 (rotate 90 clockwise to view), as phones do.
    portrait = Image.open(io.BytesIO(astronaut_jpeg)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    portrait.save(buffer, format="JPEG", exif=exif.tobytes())
    result = anonymizer.process(buffer.getvalue(), AnonymizeParams())
    assert result.faces >= 1
    output = Image.open(io.BytesIO(result.data))
    assert output.size == (512, 512)
    assert not output.getexif()  # upright pixels, no orientation tag left to apply twice


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 50], ids=str
)
def test_process_refuses_unreadable_input(anonymizer, data):
    with pytest.raises(UnsupportedImageError):
        anonymizer.process(data, AnonymizeParams())


def test_process_refuses_image_over_pixel_limit(astronaut_jpeg):
    small_limit = Anonymizer(threads=1, max_pixels=512 * 511)
    with pytest.raises(ImageTooLargeError, match="512x512"):
        small_limit.process(astronaut_jpeg, AnonymizeParams())


def test_process_caps_detection_resolution_but_blurs_full_image(anonymizer, astronaut_jpeg):
    portrait = Image.open(io.BytesIO(astronaut_jpeg))
    big = portrait.resize((2048, 2048))
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG")
    result = anonymizer.process(buffer.getvalue(), AnonymizeParams(max_detection_side=512))
    assert (result.width, result.height) == (2048, 2048)
    assert result.faces >= 1
    # Regions are in full-resolution pixels: the face spans about 4x its 512 px size.
    widths = result.regions[:, 2] - result.regions[:, 0]
    assert widths.max() > 300


def test_cache_key_depends_on_bytes_and_every_parameter(astronaut_jpeg):
    base = cache_key(astronaut_jpeg, AnonymizeParams())
    assert base == cache_key(astronaut_jpeg, AnonymizeParams())
    assert base != cache_key(astronaut_jpeg + b"\x00", AnonymizeParams())
    for change in ({"padding": 1.4}, {"mode": "pixelate"}, {"profile": "fast"}, {"denoise": True}):
        assert base != cache_key(astronaut_jpeg, AnonymizeParams(**change))


def test_cache_key_of_a_digest_equals_the_key_of_its_bytes(astronaut_jpeg):
    params = AnonymizeParams(padding=1.5)
    assert cache_key_of_digest(sha256_hex(astronaut_jpeg), params) == cache_key(
        astronaut_jpeg, params
    )


def test_params_refuse_out_of_range_and_unknown_fields():
    with pytest.raises(ValueError, match="padding"):
        AnonymizeParams(padding=0.5)
    with pytest.raises(ValueError, match="extra"):
        AnonymizeParams(blur=True)


def test_process_with_denoise_still_finds_face(anonymizer, astronaut_jpeg):
    assert anonymizer.process(astronaut_jpeg, AnonymizeParams(denoise=True)).faces >= 1


@pytest.mark.shared_data
def test_default_profile_protects_close_up_portraits_and_spares_negatives(anonymizer, shared_faces):
    samples = load_samples(shared_faces)
    portraits = [s for s in samples if s.faces and min(max(f[2], f[3]) for f in s.faces) >= 128]
    negatives = [s for s in samples if s.is_negative][:8]
    assert portraits, "the dev set should hold close-up portraits"
    report, _scores = evaluate(portraits + negatives, anonymizer, AnonymizeParams())
    assert report.buckets[">=128"].protected == report.buckets[">=128"].faces
    assert report.negative_pixel_share < 0.05


@pytest.fixture
def restore_opencv_threads():
    threads = cv2.getNumThreads()
    yield
    cv2.setNumThreads(threads)


@pytest.mark.usefixtures("restore_opencv_threads")
def test_thread_count_also_limits_opencv():
    cv2.setNumThreads(4)
    Anonymizer(threads=1)
    assert cv2.getNumThreads() == 1


@pytest.mark.usefixtures("restore_opencv_threads")
def test_no_thread_count_leaves_opencv_as_it_was():
    cv2.setNumThreads(3)
    Anonymizer()
    assert cv2.getNumThreads() == 3
