import hashlib
import io
import json
import os
import struct
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from blurcore import AnonymizeParams
from blurcore.archive import MIN_INFLATION_BUDGET
from jobstore.batch_archives import read_batch_entry
from jobstore.blobs import open_blob_store, result_key
from jobstore.records import BatchEntry, BatchRecord, JobRecord, JobStatus, RecordStore
from jobstore.video_records import VideoRecord, VideoRecordStore

from ..conftest import (
    RETENTION_SECONDS,
    Stack,
    archive_gone,
    running_stack,
    wait_for_batch,
    with_raw_name,
    zip_of,
)


@pytest.fixture(scope="module")
def finished_batch(stack, astronaut_jpeg):
    upload = zip_of(
        {
            "team/2024/alice.jpg": astronaut_jpeg,
            "team/bob.jpg": astronaut_jpeg,
            "README.txt": b"photos of the team",
            "team/broken.jpg": b"\xff\xd8\xff" + b"garbage" * 10,
            "../escape.jpg": astronaut_jpeg,
        }
    )
    with stack.client() as client:
        accepted = client.post("/v1/batches", files={"file": ("team.zip", upload)})
        assert accepted.status_code == 202
        body = accepted.json()
        progress = wait_for_batch(client, body["id"])
    return body, progress


def test_post_batch_counts_every_entry(finished_batch):
    accepted, progress = finished_batch
    assert accepted["total"] == 5
    assert progress == {
        "id": accepted["id"],
        "total": 5,
        "done": 2,
        "failed": 1,
        "skipped": 2,
        "pending": 0,
        "faces": progress["faces"],
        "finished": True,
    }
    assert progress["faces"] >= 2


def test_get_batch_result_keeps_paths_and_reports_every_entry(
    client, finished_batch, astronaut_jpeg
):
    accepted, _progress = finished_batch
    answer = client.get(accepted["result_url"])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = set(archive.namelist())
        report = json.loads(archive.read("report.json"))
        assert names == {"team/2024/alice.jpg", "team/bob.jpg", "report.json"}
        outputs = {name: archive.read(name) for name in names - {"report.json"}}
    by_path = {image["path"]: image for image in report["images"]}
    assert by_path["README.txt"]["status"] == "skipped"
    assert by_path["../escape.jpg"] == {
        **by_path["../escape.jpg"],
        "status": "skipped",
        "error": "unsafe path",
    }
    assert by_path["team/broken.jpg"]["status"] == "failed"
    assert by_path["team/broken.jpg"]["error"]
    for path, data in outputs.items():
        assert data != astronaut_jpeg
        assert by_path[path]["status"] == "done"
        assert by_path[path]["faces"] >= 1
        assert len(by_path[path]["boxes"][0]) == 5
        assert by_path[path]["output_sha256"] == hashlib.sha256(data).hexdigest()
        assert by_path[path]["input_sha256"] == hashlib.sha256(astronaut_jpeg).hexdigest()


def test_an_image_named_like_the_report_is_skipped_not_clashing(client, astronaut_jpeg):
    upload = zip_of({"report.json": astronaut_jpeg, "a.jpg": astronaut_jpeg})
    accepted = client.post("/v1/batches", files={"file": ("x.zip", upload)}).json()
    wait_for_batch(client, accepted["id"])
    with zipfile.ZipFile(io.BytesIO(client.get(accepted["result_url"]).content)) as archive:
        assert sorted(archive.namelist()) == ["a.jpg", "report.json"]
        report = json.loads(archive.read("report.json"))
    by_path = {image["path"]: image for image in report["images"]}
    assert by_path["report.json"]["status"] == "skipped"
    assert "reserved" in by_path["report.json"]["error"]
    assert by_path["a.jpg"]["status"] == "done"


def test_get_batch_result_before_finished_is_conflict(client, stack):
    # A batch whose job is still queued: create the records directly, with no task sent.
    records = RecordStore(stack.redis, "fpg", 60)
    records.create_job(JobRecord(id="a" * 32, params=AnonymizeParams(), filename="x.jpg"))
    records.create_batch(
        BatchRecord(
            id="b" * 32,
            params=AnonymizeParams(),
            filename="x.zip",
            entries=[BatchEntry(path="x.jpg", job_id="a" * 32)],
        )
    )
    assert client.get("/v1/jobs/" + "a" * 32 + "/result").status_code == 409
    answer = client.get("/v1/batches/" + "b" * 32 + "/result")
    assert answer.status_code == 409
    assert answer.json()["code"] == "not_ready"
    assert client.get("/v1/batches/" + "b" * 32).json()["pending"] == 1


def test_post_batch_that_is_not_a_zip_is_bad_request(client):
    answer = client.post("/v1/batches", files={"file": ("photos.zip", b"PK\x03\x04 nope")})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_zip"


def test_delete_batch_purges_every_key(client, stack, astronaut_jpeg):
    upload = zip_of({"a.jpg": astronaut_jpeg, "b.jpg": astronaut_jpeg})
    batch_id = client.post("/v1/batches", files={"file": ("two.zip", upload)}).json()["id"]
    wait_for_batch(client, batch_id)
    job_ids = [key.decode().split(":")[2] for key in stack.redis.scan_iter("fpg:job:*")]
    owned = [j for j in job_ids if client.get(f"/v1/jobs/{j}").json().get("batch_id") == batch_id]
    assert len(owned) == 2
    assert client.delete(f"/v1/batches/{batch_id}").status_code == 204
    for key_part in (batch_id, *owned):
        assert list(stack.redis.scan_iter(f"*{key_part}*")) == []
        assert list(stack.blob_dir.glob(f"*/*{key_part}*")) == []
    assert client.get(f"/v1/batches/{batch_id}").status_code == 404


def test_post_batch_declaring_huge_content_is_refused(client, astronaut_jpeg):
    # A ZIP bomb's central directory promises gigabytes; refuse before inflating anything.
    upload = bytearray(zip_of({"a.jpg": astronaut_jpeg}))
    central = upload.rindex(b"PK\x01\x02")
    struct.pack_into("<I", upload, central + 24, 0xF000_0000)  # the declared uncompressed size
    answer = client.post("/v1/batches", files={"file": ("bomb.zip", bytes(upload))})
    assert answer.status_code == 413
    assert answer.json()["code"] == "zip_too_large"


def test_post_batch_inflating_past_its_budget_is_refused_whole(client, stack):
    # The recipe that put 296 MB into Redis from 613 KB: entries each too small to have their
    # own compression ratio judged, so only the batch's inflated total can stop them.
    upload = zip_of({f"{i}.png": bytes(512 * 1024) for i in range(80)}, zipfile.ZIP_DEFLATED)
    keys_before = set(stack.redis.scan_iter("fpg:*"))
    answer = client.post("/v1/batches", files={"file": ("small-entries.zip", upload)})
    assert answer.status_code == 413
    assert answer.json()["code"] == "zip_too_large"
    assert (
        f"for a ZIP of {len(upload):,} bytes is {MIN_INFLATION_BUDGET:,}"
        in answer.json()["message"]
    )
    stored = [
        key
        for key in set(stack.redis.scan_iter("fpg:*")) - keys_before
        if any(kind in key for kind in (b":job:", b":datakey:", b":batch:"))
    ]
    assert stored == []


def test_post_batch_skips_and_reports_names_that_clash_outside_linux(client, astronaut_jpeg):
    hostile = ["C:\\x.jpg", "A.jpg", "a.jpg", "REPORT.JSON", "x.jpgN.exe"]
    upload = zip_of(dict.fromkeys(hostile, astronaut_jpeg))
    upload = with_raw_name(upload, "x.jpgN.exe", b"x.jpg\0.exe")
    accepted = client.post("/v1/batches", files={"file": ("names.zip", upload)}).json()
    wait_for_batch(client, accepted["id"])
    with zipfile.ZipFile(io.BytesIO(client.get(accepted["result_url"]).content)) as archive:
        assert sorted(archive.namelist()) == ["A.jpg", "report.json"]
        report = json.loads(archive.read("report.json"))
    assert [(i["path"], i["status"], i["error"]) for i in report["images"]] == [
        ("C:\\x.jpg", "skipped", "unsafe path"),
        ("A.jpg", "done", None),
        ("a.jpg", "skipped", "same file as A.jpg on case-insensitive file systems"),
        ("REPORT.JSON", "skipped", "the name report.json is reserved for a file of the output"),
        ("x.jpg\\x00.exe", "skipped", "control character in name"),
    ]


def _reset_peak_memory(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from now


def _peak_memory(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


def test_a_large_zip_streams_to_the_store_not_into_the_gateways_memory(client, stack):
    # 128 MiB of files that are not images: read whole, none held. Held in memory, as before,
    # the upload took twice its size.
    files = {f"data/{i:03d}.bin": os.urandom(1024 * 1024) for i in range(128)}
    upload = zip_of(files)
    _reset_peak_memory(stack.gateway.pid)
    before = _peak_memory(stack.gateway.pid)

    answer = client.post("/v1/batches", files={"file": ("big.zip", upload)})

    assert answer.status_code == 202, answer.text
    assert answer.json()["total"] == 128
    grown = _peak_memory(stack.gateway.pid) - before
    assert grown < 48 * 1024 * 1024, f"the gateway grew by {grown / 2**20:.0f} MiB"
    assert list(stack.blob_dir.glob("*/*:archive")) == []  # no image in it: no job needs it


def test_a_finished_batch_leaves_neither_its_zip_nor_its_hold(finished_batch, stack):
    accepted, _progress = finished_batch
    batch_id = accepted["id"]
    assert archive_gone(stack, batch_id)
    assert list(stack.redis.scan_iter(f"fpg:*{batch_id}*")) == [f"fpg:batch:{batch_id}".encode()]
    assert list(stack.blob_dir.glob("*/*:input")) == []


def lying(upload: bytes, uncompressed_size: int) -> bytes:
    """``upload`` with its last entry's central directory declaring another inflated size."""
    changed = bytearray(upload)
    struct.pack_into("<I", changed, changed.rindex(b"PK\x01\x02") + 24, uncompressed_size)
    return bytes(changed)


def test_an_entry_whose_headers_lie_fails_alone_with_the_reason(client, astronaut_jpeg):
    # 64 MiB of zeros named like a photo, declaring 1,000 bytes: within every budget by what it
    # declares; its worker reads no more than that (tests/blurcore/test_archive.py) before the
    # CRC tells the lie, and the rest of the batch is done.
    photos = {"good.jpg": astronaut_jpeg, "liar.jpg": bytes(64 << 20)}
    upload = zip_of(photos, zipfile.ZIP_DEFLATED)
    accepted = client.post("/v1/batches", files={"file": ("x.zip", lying(upload, 1000))}).json()
    progress = wait_for_batch(client, accepted["id"])
    assert (progress["done"], progress["failed"]) == (1, 1)
    with zipfile.ZipFile(io.BytesIO(client.get(accepted["result_url"]).content)) as archive:
        report = json.loads(archive.read("report.json"))
    assert [(i["path"], i["status"], i["error"]) for i in report["images"]] == [
        ("good.jpg", "done", None),
        ("liar.jpg", "failed", "unreadable entry: Bad CRC-32 for file 'liar.jpg'"),
    ]


@pytest.fixture(scope="module")
def workerless(redis_url: str) -> Iterator[Stack]:
    """A gateway with no worker behind it, on a Redis database of its own: what it stores for a
    batch stays as it left it."""
    with running_stack(redis_url.rsplit("/", 1)[0] + "/7", worker_processes=0) as started:
        started.redis.flushdb()
        yield started


def _stored(stack: Stack) -> list[str]:
    return sorted(path.name for path in stack.blob_dir.glob("*/*"))


def test_the_gateway_stores_the_zip_and_no_entry_of_it(workerless, astronaut_jpeg):
    upload = zip_of(
        {"a.jpg": astronaut_jpeg, "photos/unnamed": astronaut_jpeg, "README.txt": b"notes"},
        zipfile.ZIP_DEFLATED,
    )
    with workerless.client() as client:
        accepted = client.post("/v1/batches", files={"file": ("x.zip", upload)}).json()
    batch_id = accepted["id"]
    assert accepted["total"] == 3
    assert f"{batch_id}:archive" in _stored(workerless)
    assert [name for name in _stored(workerless) if name.endswith(":input")] == []
    # Should no job ever finish, the ZIP expires with the retention (then the sweep removes it).
    for key in (f"fpg:datakey:{batch_id}:archive", f"fpg:archive-hold:{batch_id}"):
        assert 0 < workerless.redis.ttl(key) <= RETENTION_SECONDS, key
    records = RecordStore(workerless.redis, "fpg", 60)
    batch = records.get_batch(batch_id)
    assert [(e.path, e.status, e.error) for e in batch.entries] == [
        ("a.jpg", None, None),
        ("photos/unnamed", None, None),  # not named like an image, but starts like one
        ("README.txt", "skipped", "neither an image nor a video"),
    ]
    blobs = open_blob_store(f"file:{workerless.blob_dir}", workerless.redis, "fpg")
    for job in records.get_jobs(batch.job_ids):
        assert job is not None
        assert read_batch_entry(blobs, job) == astronaut_jpeg  # the record finds its entry


def _audit(stack: Stack, batch_id: str) -> list[tuple[str, str | None, str]]:
    with stack.client() as client:
        records = client.get("/v1/audit", params={"batch_id": batch_id}).json()["records"]
    return [(r["event"], r["job_id"], r["reason"]) for r in records]


def test_delete_batch_destroys_its_zip_though_no_job_ran(workerless, astronaut_jpeg):
    upload = zip_of({"a.jpg": astronaut_jpeg, "b.jpg": astronaut_jpeg})
    with workerless.client() as client:
        batch_id = client.post("/v1/batches", files={"file": ("x.zip", upload)}).json()["id"]
        assert f"{batch_id}:archive" in _stored(workerless)
        assert client.delete(f"/v1/batches/{batch_id}").status_code == 204
    assert f"{batch_id}:archive" not in _stored(workerless)
    assert list(workerless.redis.scan_iter(f"*{batch_id}*")) == []  # data key and hold too
    assert _audit(workerless, batch_id)[-1] == (
        "keys_destroyed",
        None,
        "1 data keys destroyed: every copy of the stored objects is unreadable",
    )


def test_deleting_every_job_of_a_batch_destroys_its_zip_with_the_last(workerless, astronaut_jpeg):
    upload = zip_of({"a.jpg": astronaut_jpeg, "b.jpg": astronaut_jpeg})
    with workerless.client() as client:
        batch_id = client.post("/v1/batches", files={"file": ("x.zip", upload)}).json()["id"]
        first, last = RecordStore(workerless.redis, "fpg", 60).get_batch(batch_id).job_ids
        assert client.delete(f"/v1/jobs/{first}").status_code == 204
        assert f"{batch_id}:archive" in _stored(workerless)  # the other job still needs it
        assert client.delete(f"/v1/jobs/{last}").status_code == 204
    assert f"{batch_id}:archive" not in _stored(workerless)
    events = _audit(workerless, batch_id)
    assert [(event, job) for event, job, _reason in events] == [
        ("job_deleted", first),
        ("keys_destroyed", first),
        ("job_deleted", last),
        ("keys_destroyed", last),
        ("keys_destroyed", None),  # the ZIP's
    ]
    assert events[0][2] == (
        "deleted on request: result and record purged; the original goes with the batch's ZIP"
    )


def test_deleting_a_video_of_a_batch_before_it_ran_gives_up_its_hold_on_the_zip(
    workerless, astronaut_jpeg
):
    clip = b"\x00\x00\x00\x20ftypisom" + bytes(100)  # a video by its first bytes; never read
    upload = zip_of({"a.jpg": astronaut_jpeg, "clips/unnamed": clip})
    with workerless.client() as client:
        batch_id = client.post("/v1/batches", files={"file": ("x.zip", upload)}).json()["id"]
        batch = RecordStore(workerless.redis, "fpg", 60).get_batch(batch_id)
        ((job_id,), (video_id,)) = batch.job_ids, batch.video_ids
        assert client.get(f"/v1/batches/{batch_id}").json()["pending"] == 2
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert f"{batch_id}:archive" in _stored(workerless)  # the video still needs it
        assert client.delete(f"/v1/videos/{video_id}").status_code == 204
    assert f"{batch_id}:archive" not in _stored(workerless)
    assert [(event, job) for event, job, _reason in _audit(workerless, batch_id)][-4:] == [
        ("job_deleted", video_id),
        ("keys_destroyed", video_id),
        ("original_deleted", video_id),  # its entry, with the ZIP
        ("keys_destroyed", None),  # the ZIP's
    ]


def test_a_batch_result_streams_its_videos_not_through_the_gateways_memory(client, stack):
    # A done video of 128 MiB, as its worker leaves it; held whole, the ZIP took twice that.
    video = VideoRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.DONE,
        params=AnonymizeParams(),
        filename="long.mp4",
        suffix=".mp4",
        content_type="video/mp4",
        declared_frames=0,
    )
    VideoRecordStore(stack.redis, "fpg", 60).create(video, 60)
    batch = BatchRecord(
        id=uuid.uuid4().hex,
        params=AnonymizeParams(),
        filename="x.zip",
        entries=[BatchEntry(path="clips/long.mp4", video_id=video.id)],
    )
    RecordStore(stack.redis, "fpg", 60).create_batch(batch)
    blobs = open_blob_store(f"file:{stack.blob_dir}", stack.redis, "fpg")
    digest = hashlib.sha256()
    blobs.write(
        result_key(video.id), (_hashed(digest, os.urandom(1 << 20)) for _ in range(128)), 60
    )
    _reset_peak_memory(stack.gateway.pid)
    before = _peak_memory(stack.gateway.pid)

    downloaded = io.BytesIO()
    with client.stream("GET", f"/v1/batches/{batch.id}/result") as answer:
        assert answer.status_code == 200
        for chunk in answer.iter_bytes():
            downloaded.write(chunk)

    grown = _peak_memory(stack.gateway.pid) - before
    assert grown < 48 * 1024 * 1024, f"the gateway grew by {grown / 2**20:.0f} MiB"
    with zipfile.ZipFile(downloaded) as archive, archive.open("clips/long.mp4") as member:
        assert hashlib.file_digest(member, "sha256").hexdigest() == digest.hexdigest()


def _hashed(digest: "hashlib._Hash", data: bytes) -> bytes:
    digest.update(data)
    return data
