import hashlib
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from blurcore import AnonymizeParams
from blurcore.archive import MIN_INFLATION_BUDGET
from jobstore.records import BatchEntry, BatchRecord, JobRecord, RecordStore

from ..conftest import wait_for_batch, with_raw_name, zip_of


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
    assert list(stack.blob_dir.glob("*/*:archive")) == []  # split, then gone
