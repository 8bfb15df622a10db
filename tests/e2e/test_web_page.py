"""The page at ``/`` in a real browser, against the real gateway and Celery worker."""

import base64
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from playwright.sync_api import Page, Request, expect

from ..conftest import MAX_IMAGE_BYTES, Stack, zip_of
from .conftest import Shots

# The astronaut's face in the 512x512 portrait: rows 55-175, columns 175-275.
FACE = (slice(55, 175), slice(175, 275))
CJK = re.compile(r"[\u4e00-\u9fff]")


def open_page(page: Page, stack: Stack) -> None:
    answer = page.goto(f"{stack.url}/")
    assert answer is not None
    assert answer.ok
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def test_upload_a_photo_shows_it_anonymized_beside_the_original(
    page: Page, stack: Stack, astronaut_jpeg: bytes, tmp_path: Path, shots: Shots
) -> None:
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    open_page(page, stack)
    shots("empty")

    page.get_by_test_id("file-input").set_input_files(photo)
    card = page.locator(".image-card")
    expect(card.get_by_test_id("progress")).to_be_visible()
    result = card.get_by_test_id("result-image")
    expect(result).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=result.element_handle()
    )
    faces = card.get_by_test_id("face-count")
    expect(faces).to_have_text(re.compile(r"^\d+ faces? found$"))
    assert int(faces.get_attribute("data-count") or 0) >= 1
    expect(card.get_by_test_id("progress")).to_have_attribute("value", "100")
    before = card.get_by_role("img", name="astronaut.jpg, original")
    assert (before.get_attribute("src") or "").startswith("blob:")
    shots("anonymized")

    # The preview is the anonymized image: its face differs from the original, the rest not.
    answer = page.request.get(result.evaluate("img => img.src"))
    assert answer.ok
    difference = np.abs(pixels(answer.body()) - pixels(astronaut_jpeg)).mean(axis=2)
    assert difference[FACE].mean() > 15
    assert difference[300:, 400:].mean() < 3

    # The review outlines are the job's regions drawn over the image, covering the face.
    outlines = card.get_by_test_id("outlines")
    expect(outlines).to_be_hidden()
    page.get_by_test_id("outline-toggle").check()
    expect(outlines).to_be_visible()
    box = outlines.locator("rect.box").first
    x, y, w, h = (float(box.get_attribute(name) or 0) for name in ("x", "y", "width", "height"))
    assert 175 <= x + w / 2 <= 275
    assert 55 <= y + h / 2 <= 175
    shots("outlines")

    link = card.get_by_test_id("download")
    expect(link).to_have_attribute("download", "astronaut-anonymized.jpg")
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == "astronaut-anonymized.jpg"
    assert Path(download.path()).read_bytes() == answer.body()


def test_upload_a_zip_shows_batch_progress_and_downloads_the_zip(
    page: Page, stack: Stack, astronaut_jpeg: bytes, tmp_path: Path, shots: Shots
) -> None:
    mirrored = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()[:, ::-1]).save(mirrored, format="PNG")
    archive = tmp_path / "team.zip"
    archive.write_bytes(
        zip_of(
            {
                "team/astronaut.jpg": astronaut_jpeg,
                "team/mirrored.png": mirrored.getvalue(),
                "team/notes.txt": b"not a photo",
            }
        )
    )
    open_page(page, stack)

    page.get_by_test_id("file-input").set_input_files(archive)
    card = page.locator(".batch-card")
    progress = card.get_by_test_id("progress")
    expect(progress).to_have_attribute("max", "3")
    expect(progress).to_have_attribute("value", "3", timeout=60_000)
    expect(card).to_contain_text("3 of 3 files processed")
    expect(card).to_contain_text("2 anonymized · 0 failed · 1 skipped")
    assert int(card.get_by_test_id("face-count").get_attribute("data-count") or 0) >= 2
    expect(page.get_by_test_id("overall-progress")).to_have_attribute("value", "1")
    shots("finished")

    with page.expect_download() as started:
        card.get_by_test_id("download").click()
    download = started.value
    assert download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(download.path()) as result:
        assert set(result.namelist()) == {"team/astronaut.jpg", "team/mirrored.png", "report.json"}
        report = json.loads(result.read("report.json"))
    statuses = {image["path"]: image["status"] for image in report["images"]}
    assert statuses == {
        "team/astronaut.jpg": "done",
        "team/mirrored.png": "done",
        "team/notes.txt": "skipped",
    }


def test_a_text_file_named_jpg_gets_an_error_in_words(
    page: Page, stack: Stack, tmp_path: Path, shots: Shots
) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("meeting notes, not a photo")
    open_page(page, stack)

    page.get_by_test_id("file-input").set_input_files(fake)
    card = page.locator(".image-card")
    error = card.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("This is not a photo the service can read")
    expect(error).not_to_contain_text("unsupported_media_type")
    expect(card.get_by_test_id("result-image")).to_be_hidden()
    expect(card.get_by_test_id("download")).to_be_hidden()
    shots("error")

    page.get_by_test_id("lang-toggle").click()
    expect(error).to_contain_text("这不是可以处理的照片")
    shots("error-zh")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("broken.zip", b"PK\x03\x04 this is no archive", "This ZIP file is damaged"),
        ("huge.jpg", b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES), "This file is too large"),
    ],
    ids=["broken-zip", "too-large"],
)
def test_a_broken_zip_or_a_too_large_file_gets_an_error_in_words(
    page: Page, stack: Stack, tmp_path: Path, shots: Shots, name: str, content: bytes, words: str
) -> None:
    upload = tmp_path / name
    upload.write_bytes(content)
    open_page(page, stack)
    posted: list[str] = []
    page.on(
        "request", lambda request: posted.append(request.url) if request.method == "POST" else None
    )

    page.get_by_test_id("file-input").set_input_files(upload)
    error = page.locator(".card").get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(words)
    if name == "huge.jpg":
        expect(error).to_contain_text("5 MB")
        assert posted == [], "an oversize file is refused before it is uploaded"
    shots("error")


def test_the_page_loads_everything_from_the_gateway_itself(page: Page, stack: Stack) -> None:
    requests: list[str] = []

    def record(request: Request) -> None:
        requests.append(request.url)

    page.on("request", record)
    answer = page.goto(f"{stack.url}/")
    assert answer is not None
    page.wait_for_load_state("networkidle")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    outside = [url for url in requests if not url.startswith((stack.url, "blob:", "data:"))]
    assert outside == []
    assert {f"{stack.url}/static/app.js", f"{stack.url}/static/app.css"} <= set(requests)
    policy = answer.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "style-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in policy


def test_switching_language_changes_the_text_and_back(
    page: Page, stack: Stack, shots: Shots
) -> None:
    open_page(page, stack)
    title = page.locator(".dropzone-title")
    toggle = page.get_by_test_id("lang-toggle")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(title).to_have_text("Drop photos, videos or ZIP files here, or click to choose")

    toggle.click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(title).to_have_text(CJK)
    expect(page.get_by_label("处理方式")).to_be_visible()
    expect(toggle).to_have_text("English")
    shots("chinese")

    toggle.click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(title).to_have_text("Drop photos, videos or ZIP files here, or click to choose")
    expect(page.get_by_label("Method")).to_be_visible()
    expect(toggle).to_have_text("中文")


@pytest.mark.parametrize("locale", ["zh-CN"])
def test_a_chinese_browser_gets_chinese_first(page: Page, stack: Stack, shots: Shots) -> None:
    open_page(page, stack)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator(".dropzone-title")).to_have_text(CJK)
    shots("chinese-browser")


def test_several_files_at_once_each_get_a_card_and_the_page_counts_them(
    page: Page, stack: Stack, astronaut_jpeg: bytes, tmp_path: Path, shots: Shots
) -> None:
    page.set_viewport_size({"width": 420, "height": 900})  # a phone: the columns stack
    first, second = tmp_path / "anna.jpg", tmp_path / "ben.jpg"
    first.write_bytes(astronaut_jpeg)
    second.write_bytes(astronaut_jpeg)
    open_page(page, stack)
    page.get_by_label("Method").select_option("pixelate")

    page.get_by_test_id("file-input").set_input_files([first, second])
    expect(page.get_by_test_id("result-image")).to_have_count(2)
    for image in page.get_by_test_id("result-image").all():
        expect(image).to_be_visible()
    expect(page.locator("#overall-text")).to_have_text("2 of 2 finished")
    expect(page.get_by_test_id("download")).to_have_count(2)
    # The options travel as form fields beside the file.
    result_path = page.get_by_test_id("download").first.get_attribute("href") or ""
    job = page.request.get(f"{stack.url}/{result_path.removesuffix('/result')}").json()
    assert job["params"]["mode"] == "pixelate"
    assert job["params"]["padding"] == 1.6
    shots("two-photos-narrow")


def test_the_drop_zone_is_a_labelled_file_input_reached_by_keyboard(
    page: Page, stack: Stack, shots: Shots
) -> None:
    open_page(page, stack)
    picker = page.get_by_label(re.compile("Drop photos, videos or ZIP files here"))
    expect(picker).to_have_attribute("type", "file")
    expect(picker).to_have_attribute("data-testid", "file-input")
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("lang-toggle")).to_be_focused()
    page.keyboard.press("Tab")
    expect(picker).to_be_focused()
    shots("focused-drop-zone")


def test_dropping_a_file_on_the_page_adds_it(
    page: Page, stack: Stack, astronaut_jpeg: bytes, shots: Shots
) -> None:
    small = io.BytesIO()
    Image.open(io.BytesIO(astronaut_jpeg)).resize((256, 256)).save(small, format="PNG")
    open_page(page, stack)
    page.evaluate(
        """([name, encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            const zone = document.getElementById("dropzone");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true,
                                                         cancelable: true }));
            }
        }""",
        ["dropped.png", base64.b64encode(small.getvalue()).decode()],
    )
    card = page.locator(".image-card")
    expect(card.get_by_test_id("result-image")).to_be_visible()
    expect(card.get_by_test_id("download")).to_have_attribute("download", "dropped-anonymized.png")
    expect(page.get_by_test_id("dropzone")).not_to_have_class(re.compile("dragging"))
    assert page.url == f"{stack.url}/"
    shots("dropped")
