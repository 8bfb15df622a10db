"""The page where the gateway requires API keys (every deployment): without a key it says so in
words; with a submitter key typed in, a photo and a ZIP come back anonymized and downloadable."""

import io
import re
import zipfile
from pathlib import Path

from playwright.sync_api import Page, expect

from ..conftest import Stack, zip_of
from .conftest import Shots
from .test_web_page import open_page


def test_without_a_key_the_page_asks_for_one(
    page: Page, keyed: tuple[Stack, str], astronaut_jpeg: bytes, tmp_path: Path, shots: Shots
) -> None:
    stack, _secret = keyed
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    open_page(page, stack)
    page.get_by_test_id("file-input").set_input_files(photo)
    error = page.locator(".image-card").get_by_test_id("error")
    expect(error).to_contain_text("API key")
    shots("key-needed")


def test_with_a_key_a_photo_and_a_zip_come_back_anonymized(
    page: Page, keyed: tuple[Stack, str], astronaut_jpeg: bytes, tmp_path: Path, shots: Shots
) -> None:
    stack, secret = keyed
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    archive = tmp_path / "staff.zip"
    archive.write_bytes(zip_of({"staff/a.jpg": astronaut_jpeg}))
    open_page(page, stack)
    page.get_by_test_id("api-key").fill(secret)
    page.get_by_test_id("api-key").dispatch_event("change")

    page.get_by_test_id("file-input").set_input_files(photo)
    card = page.locator(".image-card")
    result = card.get_by_test_id("result-image")
    expect(result).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=result.element_handle()
    )
    assert (result.get_attribute("src") or "").startswith("blob:")
    expect(card.get_by_test_id("face-count")).to_have_text(re.compile(r"^\d+ faces? found$"))
    with page.expect_download() as started:
        card.get_by_test_id("download").click()
    assert Path(started.value.path()).read_bytes()[:2] == b"\xff\xd8"

    page.get_by_test_id("file-input").set_input_files(archive)
    batch = page.locator(".batch-card")
    link = batch.get_by_test_id("download")
    expect(link).to_have_attribute("download", "staff-anonymized.zip", timeout=60_000)
    with page.expect_download() as started:
        link.click()
    with zipfile.ZipFile(io.BytesIO(Path(started.value.path()).read_bytes())) as downloaded:
        assert sorted(downloaded.namelist()) == ["report.json", "staff/a.jpg"]
    shots("with-key")

    # The key is remembered for the tab, not typed again after a reload.
    open_page(page, stack)
    expect(page.get_by_test_id("api-key")).to_have_value(secret)
