"""A video of a batch in the worker, against a real Redis, a real blob directory and the real
models, without Celery: its first step copies its entry out of the batch's stored ZIP, counts it
off the ZIP's hold whatever came of the copy, and a redelivery finds the copy made."""

import io
import time
import zipfile
from pathlib import Path

import pytest
import redis

from blurcore import AnonymizeParams
from blurcore.archive import EntryLocation
from fpg_worker.videos import VideoRunner
from jobstore.blobs import archive_key, input_key, open_blob_store
from jobstore.records import ArchiveEntryRef, JobStatus, RecordStore
from jobstore.video_records import VideoRecord, VideoRecordStore

from ..blurcore.video.clips import ClipSpec, make_clip
from ..conftest import zip_of

MAX_VIDEO_BYTES = 1024 * 1024
OTHER_READER = "f" * 32  # a job of the batch still to read its entry: the ZIP stays for it


@pytest.fixture
def prefix() -> str:
    return f"batch-video-{time.monotonic_ns()}"


@pytest.fixture
def client(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def runner(client, anonymizer, tmp_path, prefix) -> VideoRunner:
    return VideoRunner(
        videos=VideoRecordStore(client, prefix, 300),
        blobs=open_blob_store(f"file:{tmp_path}/blobs", client, prefix),
        anonymizer=anonymizer,
        records=RecordStore(client, prefix, 300),
        max_video_seconds=60,
    )


@pytest.fixture
def clip(tmp_path: Path) -> bytes:
    path = tmp_path / "clip.mp4"
    make_clip(path, ClipSpec(frames=8, size=(160, 90)))
    return path.read_bytes()


def _queued(runner: VideoRunner, upload: bytes) -> VideoRecord:
    """The video of ``a.mp4`` in a batch whose ZIP is ``upload``, as the gateway leaves it."""
    with zipfile.ZipFile(io.BytesIO(upload)) as archive:
        location = EntryLocation.of(archive.getinfo("a.mp4"))
    video = VideoRecord(
        id=f"{time.monotonic_ns():032x}",
        params=AnonymizeParams(profile="fast"),
        filename="a.mp4",
        batch_id=f"{time.monotonic_ns():032x}",
        suffix=".mp4",
        content_type="video/mp4",
        declared_frames=0,
        archive_entry=ArchiveEntryRef(location=location, max_bytes=MAX_VIDEO_BYTES),
    )
    assert video.batch_id is not None
    assert runner.records is not None
    runner.blobs.put(archive_key(video.batch_id), upload, 300)
    runner.records.hold_archive(video.batch_id, [video.id, OTHER_READER])
    runner.videos.create(video, 300)
    return video


def _hold(client: redis.Redis, prefix: str, video: VideoRecord) -> set[bytes]:
    """Who still needs the batch's ZIP (``RecordStore.hold_archive``)."""
    return set(client.smembers(f"{prefix}:archive-hold:{video.batch_id}"))


def test_the_first_step_copies_the_entry_out_and_gives_up_its_hold(runner, client, prefix, clip):
    video = _queued(runner, zip_of({"a.mp4": clip}, zipfile.ZIP_DEFLATED))

    detect_tasks = runner.plan(video.id)

    assert len(detect_tasks) == 1
    assert runner.blobs.get(input_key(video.id)) == clip
    assert _hold(client, prefix, video) == {b"archive", OTHER_READER.encode()}
    assert runner.blobs.exists(archive_key(video.batch_id))  # the other reader still needs it


def test_a_redelivered_first_step_finds_the_copy_made(runner, client, prefix, clip):
    """Its worker died after the copy and before the count: the ZIP is not needed again."""
    video = _queued(runner, zip_of({"a.mp4": clip}))
    runner.blobs.put(input_key(video.id), clip, 300)
    runner.blobs.delete(archive_key(video.batch_id))

    assert len(runner.plan(video.id)) == 1

    assert _hold(client, prefix, video) == {b"archive", OTHER_READER.encode()}


def test_an_entry_that_cannot_be_copied_fails_the_video_and_gives_up_its_hold(
    runner, client, prefix, clip
):
    upload = bytearray(zip_of({"a.mp4": clip}))
    upload[len(upload) // 2] ^= 0xFF  # inside the stored entry's data: its CRC fails
    video = _queued(runner, bytes(upload))

    assert runner.plan(video.id) == []

    failed = runner.videos.get(video.id)
    assert failed is not None
    assert (failed.status, failed.error) == (
        JobStatus.FAILED,
        "unreadable entry: Bad CRC-32 for file 'a.mp4'",
    )
    assert not runner.blobs.exists(input_key(video.id))  # nothing of the copy kept
    assert _hold(client, prefix, video) == {b"archive", OTHER_READER.encode()}
