"""Videos on the page at ``/`` in a real browser, against the real gateway and Celery worker: a real
clip goes up with its bytes counted, is followed frame by frame with the time left, plays and
seeks in the page's player, downloads, and "Remove" deletes it from the server."""

import base64
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, Response, expect

from ..blurcore.video.clips import ClipSpec, audio_packets, camera, make_clip
from ..conftest import Stack, private_redis, running_stack
from .conftest import Shots
from .test_web_page import open_page

# 2 s of a camera moving over the astronaut's portrait: a face in every frame. On these machines
# the worker takes 1.5 to 3 s over it, long enough for the page's polls to see it running.
CLIP = ClipSpec(frames=50, rate=25)
SEEK_FRAME = 25  # shown from 1.00 s to 1.04 s; the player is sent to the middle of it
# The clip is about 75 KB: at this rate its upload takes over two seconds, long enough to see
# the bytes counted (on loopback the whole request is sent in one go).
UPLOAD_BYTES_PER_SECOND = 30_000

# Every change of the card, as the user sees it: [state, status, detail line, progress value].
RECORD_CARD_CHANGES = """() => {
    window.cardChanges = [];
    const record = () => {
        const card = document.querySelector(".video-card");
        if (!card) return;
        const seen = [card.dataset.state, card.querySelector(".status").textContent,
                      card.querySelector("[data-testid=progress-detail]").textContent,
                      Number(card.querySelector("[data-testid=progress]").value)];
        const last = window.cardChanges.at(-1);
        if (!last || seen.some((value, index) => value !== last[index])) {
            window.cardChanges.push(seen);
        }
    };
    new MutationObserver(record).observe(document.getElementById("results"),
        { subtree: true, childList: true, attributes: true, characterData: true });
}"""

# Seek the player to `time` once it knows the video; what it then shows, as a PNG.
SEEK_AND_CAPTURE = """async (video, time) => {
    const reached = (event, test) => test() ? null :
        new Promise((resolve) => video.addEventListener(event, resolve, { once: true }));
    await reached("loadedmetadata", () => video.readyState >= 1);
    const seeked = new Promise((resolve) => video.addEventListener("seeked", resolve,
                                                                  { once: true }));
    video.currentTime = time;
    await seeked;
    await reached("loadeddata", () => video.readyState >= 2);
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    return {
        duration: video.duration,
        currentTime: video.currentTime,
        seekableUntil: video.seekable.length ? video.seekable.end(0) : 0,
        frame: canvas.toDataURL("image/png"),
    };
}"""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "lesson.mp4"
    make_clip(path, CLIP)
    return path


def throttle_upload(page: Page, bytes_per_second: int) -> None:
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def png_pixels(data_url: str) -> np.ndarray:
    encoded = data_url.removeprefix("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    return np.asarray(image).astype(np.int16)


def assert_player_seeks_to_an_anonymized_frame(player: Locator) -> None:
    """The player knows the whole clip, goes where it is sent, and shows there the frame the
    clip has at that time with the face, and only the face, changed."""
    seek_time = (SEEK_FRAME + 0.5) / CLIP.rate
    shown = player.evaluate(SEEK_AND_CAPTURE, seek_time)
    assert shown["duration"] == pytest.approx(CLIP.frames / CLIP.rate, abs=0.05)
    assert shown["currentTime"] == pytest.approx(seek_time, abs=0.001)
    assert shown["seekableUntil"] >= shown["duration"] - 0.05
    original, (x1, y1, x2, y2) = camera(SEEK_FRAME, CLIP)
    difference = np.abs(png_pixels(shown["frame"]) - original.astype(np.int16)).mean(axis=2)
    assert difference[round(y1) : round(y2), round(x1) : round(x2)].mean() > 15, (
        "the face is not anonymized in the player"
    )
    # Away from the face and the margin blurred around it, the frame is the clip's own (a frame
    # before or after it differs there by 8 or more: the camera pans 3 px a frame).
    width, height = x2 - x1, y2 - y1
    away = np.ones(difference.shape, bool)
    away[
        max(0, round(y1 - 0.75 * height)) : round(y2 + 0.75 * height),
        max(0, round(x1 - 0.75 * width)) : round(x2 + 0.75 * width),
    ] = False
    assert difference[away].mean() < 4, "the player does not show the frame it was sent to"


def gone_from_server(page: Page, status_url: str, headers: dict[str, str] | None = None) -> bool:
    """Whether the video's status answers 404 within a few seconds ("Remove" does not wait for
    its DELETE)."""
    deadline = time.monotonic() + 10
    while page.request.get(status_url, headers=headers).status != 404:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_video_uploads_runs_plays_seeks_downloads_and_is_removed(
    page: Page, stack: Stack, clip: Path, shots: Shots
) -> None:
    open_page(page, stack)
    page.evaluate(RECORD_CARD_CHANGES)
    player_answers: list[Response] = []
    page.on("response", lambda answer: player_answers.append(answer))
    throttle_upload(page, UPLOAD_BYTES_PER_SECOND)

    page.get_by_test_id("file-input").set_input_files(clip)
    card = page.locator(".video-card")
    expect(card).to_have_attribute("data-state", "uploading")
    shots("uploading")
    frames = re.compile(rf"Frame \d+ of {CLIP.frames}")
    expect(card.get_by_test_id("progress-detail")).to_have_text(frames)
    shots("running")
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    shots("done")

    changes = page.evaluate("() => window.cardChanges")
    uploading = [change for change in changes if change[0] == "uploading"]
    sent = [change for change in uploading if change[2]]
    assert all(re.fullmatch(r"[\d.]+ KB of [\d.]+ KB sent", change[2]) for change in sent)
    assert any(0 < change[3] < 100 for change in sent), f"no bytes counted midway: {uploading}"
    assert [change[3] for change in uploading] == sorted(change[3] for change in uploading)
    running = [change for change in changes if change[0] == "running"]
    assert running, f"the worker's progress was never shown: {changes}"
    for _state, status, detail, value in running:
        assert re.fullmatch(r"Anonymizing… \d+%", status)
        assert re.fullmatch(rf"Frame \d+ of {CLIP.frames}( · about .+ left)?", detail)
        assert 0 <= value <= 100
    assert [change[3] for change in running] == sorted(change[3] for change in running)
    assert any("left" in change[2] for change in running), "no time left shown"
    expect(card.get_by_test_id("progress")).to_have_attribute("value", "100")
    assert int(card.get_by_test_id("face-count").get_attribute("data-count") or 0) >= 1

    # The player shows the anonymized video, and seeks in it: the gateway answers its ranges.
    player = card.get_by_test_id("result-video")
    expect(player).to_be_visible()
    result_url = player.evaluate("video => video.src")
    assert re.search(r"/v1/videos/[0-9a-f]+/result$", result_url)
    assert_player_seeks_to_an_anonymized_frame(player)
    assert any(answer.url == result_url and answer.status == 206 for answer in player_answers), (
        "the player got no byte range of the result"
    )
    shots("seeked")
    part = page.request.get(result_url, headers={"Range": "bytes=100-199"})
    assert part.status == 206
    assert part.headers["content-range"].startswith("bytes 100-199/")
    assert len(part.body()) == 100

    link = card.get_by_test_id("download")
    expect(link).to_have_attribute("download", "lesson-anonymized.mp4")
    with page.expect_download() as started:
        link.click()
    assert started.value.suggested_filename == "lesson-anonymized.mp4"
    assert Path(started.value.path()).read_bytes() == page.request.get(result_url).body()

    page.get_by_test_id("lang-toggle").click()
    expect(card.locator(".status")).to_have_text("完成")
    expect(card.locator(".badge")).to_have_text("视频")
    shots("chinese")

    card.get_by_role("button", name="移除: lesson.mp4").click()
    expect(card).to_have_count(0)
    assert gone_from_server(page, result_url.removesuffix("/result"))
    assert page.request.get(result_url).status == 404


def test_the_sound_option_travels_with_videos_only(
    page: Page, stack: Stack, clip: Path, astronaut_jpeg: bytes, tmp_path: Path
) -> None:
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    open_page(page, stack)
    page.get_by_label("Sound in videos").select_option("mute")

    # The photo endpoint refuses a field it does not know: the photo only succeeds without it.
    page.get_by_test_id("file-input").set_input_files([clip, photo])
    card = page.locator(".video-card")
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    expect(page.locator(".image-card")).to_have_attribute("data-state", "done")
    with page.expect_download() as started:
        card.get_by_test_id("download").click()
    assert audio_packets(clip) != []
    assert audio_packets(Path(started.value.path())) == []


@pytest.mark.parametrize(
    ("damage", "answer", "words", "chinese"),
    [
        ("text", 415, "This is not a video the service can read", "这不是可以处理的视频"),
        ("cut", 422, "This video could not be read", "无法读取这个视频"),
        ("garbled", 202, "This video could not be read", "无法读取这个视频"),
    ],
)
def test_a_file_that_is_no_video_or_a_damaged_one_gets_an_error_in_words(
    page: Page,
    stack: Stack,
    clip: Path,
    tmp_path: Path,
    shots: Shots,
    damage: str,
    answer: int,
    words: str,
    chinese: str,
) -> None:
    upload = tmp_path / "lesson.mp4"
    whole = clip.read_bytes()
    if damage == "text":  # refused by its first bytes
        upload.write_text("meeting notes, not a video")
    elif damage == "cut":  # refused by its header: the moov box, written last, is missing
        upload.write_bytes(whole[: len(whole) // 2])
    else:  # accepted by its header; frames after the first are noise, which the worker finds
        upload.write_bytes(whole[:20_000] + b"\xff" * 30_000 + whole[50_000:])
    open_page(page, stack)

    with page.expect_response(re.compile(r"/v1/videos$")) as posted:
        page.get_by_test_id("file-input").set_input_files(upload)
    assert posted.value.status == answer
    card = page.locator(".video-card")
    error = card.get_by_test_id("error")
    expect(error).to_contain_text(words)
    expect(card.get_by_test_id("result-video")).to_be_hidden()
    expect(card.get_by_test_id("download")).to_be_hidden()
    shots("error")

    page.get_by_test_id("lang-toggle").click()
    expect(error).to_contain_text(chinese)


def test_a_video_over_the_size_limit_is_refused_before_it_is_uploaded(
    page: Page, stack: Stack, tmp_path: Path, shots: Shots
) -> None:
    open_page(page, stack)
    expect(page.locator(".dropzone-hint")).to_contain_text("videos (MP4, MOV, MKV, WebM, AVI)")
    limit = int(page.locator("body").get_attribute("data-max-video-bytes") or 0)
    huge = tmp_path / "recording.mov"
    with huge.open("wb") as sparse:
        sparse.truncate(limit + 1)  # a hole: it takes no disk
    posted: list[str] = []
    page.on(
        "request", lambda request: posted.append(request.url) if request.method == "POST" else None
    )

    page.get_by_test_id("file-input").set_input_files(huge)
    error = page.locator(".video-card").get_by_test_id("error")
    expect(error).to_contain_text("This file is too large. The server accepts files up to")
    expect(error).to_contain_text(re.compile(r"up to [\d.]+ [GM]B\."))
    assert posted == [], "an oversize video is refused before it is uploaded"
    shots("too-large")


def test_with_a_key_the_video_plays_from_a_copy_fetched_with_it(
    page: Page, keyed: tuple[Stack, str], clip: Path, shots: Shots
) -> None:
    stack, secret = keyed
    open_page(page, stack)
    page.get_by_test_id("api-key").fill(secret)
    page.get_by_test_id("api-key").dispatch_event("change")

    with page.expect_response(re.compile(r"/v1/videos$")) as posted:
        page.get_by_test_id("file-input").set_input_files(clip)
    status_url = f"{stack.url}/v1/videos/{posted.value.json()['id']}"
    card = page.locator(".video-card")
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    player = card.get_by_test_id("result-video")
    expect(player).to_be_visible()
    assert (player.get_attribute("src") or "").startswith("blob:")
    assert_player_seeks_to_an_anonymized_frame(player)
    with page.expect_download() as started:
        card.get_by_test_id("download").click()
    assert Path(started.value.path()).read_bytes()[4:8] == b"ftyp"
    shots("with-key")

    card.get_by_role("button", name="Remove: lesson.mp4").click()
    expect(card).to_have_count(0)
    assert gone_from_server(page, status_url, headers={"Authorization": f"Bearer {secret}"})


def test_a_folder_brings_its_videos_and_photos_and_names_what_it_left_out(
    page: Page, stack: Stack, clip: Path, astronaut_jpeg: bytes, tmp_path: Path, shots: Shots
) -> None:
    folder = tmp_path / "class-4b"
    folder.mkdir()
    (folder / "lesson.mp4").write_bytes(clip.read_bytes())
    (folder / "portrait.jpg").write_bytes(astronaut_jpeg)
    (folder / "notes.txt").write_text("not a photo, not a video")
    open_page(page, stack)

    page.get_by_test_id("folder-input").set_input_files(folder)
    expect(page.locator("#notice")).to_have_text(
        "Left out 1 files that are not photos, videos or ZIP files: class-4b/notes.txt"
    )
    expect(page.locator(".video-card")).to_have_attribute("data-state", "done", timeout=120_000)
    expect(page.locator(".image-card")).to_have_attribute("data-state", "done")
    expect(page.locator(".card")).to_have_count(2)
    shots("folder")


def test_a_result_this_browser_cannot_play_is_still_offered_for_download(
    page: Page, stack: Stack, tmp_path: Path, shots: Shots
) -> None:
    # The result keeps its container, and no browser plays AVI.
    recording = tmp_path / "camera.avi"
    make_clip(recording, ClipSpec(frames=10, codec="mpeg4", audio=()))
    open_page(page, stack)

    page.get_by_test_id("file-input").set_input_files(recording)
    card = page.locator(".video-card")
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    expect(card).to_contain_text("This browser cannot play this kind of video")
    expect(card.get_by_test_id("result-video")).to_be_hidden()
    link = card.get_by_test_id("download")
    expect(link).to_have_attribute("download", "camera-anonymized.avi")
    with page.expect_download() as started:
        link.click()
    assert Path(started.value.path()).read_bytes()[8:12] == b"AVI "
    shots("not-playable")


@pytest.fixture(scope="module")
def one_second_limit() -> Iterator[Stack]:
    """A stack of its own that takes videos of a second at most."""
    with (
        private_redis() as redis_url,
        running_stack(redis_url, worker_processes=1, FPG_MAX_VIDEO_SECONDS="1") as stack,
    ):
        yield stack


def test_a_video_over_the_duration_limit_gets_the_limit_in_words(
    page: Page, one_second_limit: Stack, clip: Path, shots: Shots
) -> None:
    open_page(page, one_second_limit)
    hint = page.locator(".dropzone-hint")
    expect(hint).to_contain_text(re.compile(r"videos .* up to [\d.]+ [GM]B and 1 sec;"))

    page.get_by_test_id("file-input").set_input_files(clip)
    error = page.locator(".video-card").get_by_test_id("error")
    expect(error).to_contain_text("This video is too long. The server accepts videos up to 1 sec.")
    shots("too-long")
