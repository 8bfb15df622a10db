"""Compliance with API keys on, on each audit database (an SQLite file, then PostgreSQL): keys and
roles on every route, an audit record per image whose hashes match the bytes, a hash chain that
shows a changed row, duplicate uploads answered from the stored result, and deletions and expiry
that leave no image bytes behind but leave audit events.

Each database gets its own Redis, worker and gateway (module scope)."""

import csv
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from PIL import Image

from blurcore import Profile
from blurcore.finder import FaceFinder
from fpg_audit import AuditStore, Role
from fpg_audit.export import verify_export
from fpg_audit.schema import audit_records

from ..conftest import (
    RETENTION_SECONDS,
    Stack,
    archive_gone,
    postgres_database,
    private_redis,
    running_stack,
    wait_for_batch,
    wait_for_job,
    zip_of,
)

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}
ZERO_ID = "0" * 32


@dataclass
class Compliance:
    stack: Stack
    audit: AuditStore
    submitter: str
    other_submitter: str
    auditor: str
    submitter_id: str
    auditor_id: str

    def as_(self, secret: str, header: str = "bearer") -> httpx.Client:
        headers = (
            {"Authorization": f"Bearer {secret}"} if header == "bearer" else {"X-API-Key": secret}
        )
        return httpx.Client(base_url=self.stack.url, timeout=60, headers=headers)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def compliance(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Compliance]:
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path_factory.mktemp('audit')}/audit.db"
        yield from _started(database)
    else:
        with postgres_database() as database:
            yield from _started(database)


def _started(database: str) -> Iterator[Compliance]:
    audit = AuditStore.connect(database)
    submitter_key, submitter = audit.create_key("hr-archive", Role.SUBMITTER)
    _other, other_submitter = audit.create_key("school", Role.SUBMITTER)
    auditor_key, auditor = audit.create_key("dpo", Role.AUDITOR)
    with (
        private_redis() as redis_url,
        running_stack(
            redis_url, FPG_REQUIRE_API_KEYS="true", FPG_AUDIT_DATABASE_URL=database
        ) as stack,
    ):
        yield Compliance(
            stack, audit, submitter, other_submitter, auditor, submitter_key.id, auditor_key.id
        )
    audit.close()


def _distinct_jpeg(photo: bytes, seed: int) -> bytes:
    """The portrait re-encoded at another quality: other bytes, so no upload hits the cache."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(buffer, format="JPEG", quality=60 + seed)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _records(compliance: Compliance, **filters: str) -> list[dict[str, object]]:
    with compliance.as_(compliance.auditor) as auditor:
        answer = auditor.get("/v1/audit", params={"limit": 10_000, **filters})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["records"])


PROTECTED = [
    ("POST", "/v1/images"),
    ("GET", f"/v1/jobs/{ZERO_ID}"),
    ("GET", f"/v1/jobs/{ZERO_ID}/result"),
    ("DELETE", f"/v1/jobs/{ZERO_ID}"),
    ("POST", "/v1/batches"),
    ("GET", f"/v1/batches/{ZERO_ID}"),
    ("GET", f"/v1/batches/{ZERO_ID}/result"),
    ("DELETE", f"/v1/batches/{ZERO_ID}"),
    ("POST", "/v1/videos"),
    ("GET", f"/v1/videos/{ZERO_ID}"),
    ("GET", f"/v1/videos/{ZERO_ID}/result"),
    ("GET", f"/v1/videos/{ZERO_ID}/report"),
    ("DELETE", f"/v1/videos/{ZERO_ID}"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/status"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_api_route_refuses_a_missing_or_unknown_key(compliance, method, path):
    with httpx.Client(base_url=compliance.stack.url, timeout=30) as anonymous:
        missing = anonymous.request(method, path)
        unknown = anonymous.request(method, path, headers={"X-API-Key": "fpg_not-a-key"})
    for answer in (missing, unknown):
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_api_route_refuses_the_wrong_role(compliance, method, path):
    wrong = compliance.submitter if path.startswith("/v1/audit") else compliance.auditor
    with compliance.as_(wrong, header="x-api-key") as client:
        answer = client.request(method, path)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "forbidden"


def test_health_metrics_and_the_page_need_no_key(compliance):
    with httpx.Client(base_url=compliance.stack.url, timeout=30) as anonymous:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/"):
            assert anonymous.get(path).status_code == 200, path


def test_a_revoked_key_stops_working_at_once(compliance):
    key, secret = compliance.audit.create_key("temporary", Role.AUDITOR)
    with compliance.as_(secret) as client:
        assert client.get("/v1/audit/verify").status_code == 200
        compliance.audit.revoke_key(key.id)
        assert client.get("/v1/audit/verify").status_code == 401


def test_openapi_documents_keys_and_both_refusals(compliance):
    with httpx.Client(base_url=compliance.stack.url, timeout=30) as anonymous:
        document = anonymous.get("/openapi.json").json()
    assert set(document["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            assert {} not in operation["security"], (method, path)  # keys are not optional
            for status in ("401", "403"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == ERROR_SCHEMA, (method, path, status)


def test_a_key_sees_only_its_own_jobs_and_batches(compliance, astronaut_jpeg):
    photo = _distinct_jpeg(astronaut_jpeg, 1)
    with (
        compliance.as_(compliance.submitter) as owner,
        compliance.as_(compliance.other_submitter) as stranger,
    ):
        job = owner.post("/v1/images?wait=30", files={"file": ("a.jpg", photo)})
        job_id = job.headers["X-Job-Id"]
        batch = owner.post("/v1/batches", files={"file": ("b.zip", zip_of({"x.jpg": photo}))})
        batch_id = batch.json()["id"]
        for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/result", f"/v1/batches/{batch_id}"):
            assert stranger.get(path).status_code == 404, path
        assert stranger.delete(f"/v1/jobs/{job_id}").status_code == 404
        assert stranger.delete(f"/v1/batches/{batch_id}").status_code == 404
        assert owner.get(f"/v1/jobs/{job_id}").json()["status"] == "done"
        assert wait_for_batch(owner, batch_id)["done"] == 1


def test_every_image_of_a_batch_has_a_record_whose_hashes_match_the_bytes(
    compliance, astronaut_jpeg
):
    photos = {f"staff/{n}.jpg": _distinct_jpeg(astronaut_jpeg, 10 + n) for n in range(3)}
    upload = zip_of({**photos, "staff/README.txt": b"not a photo"})
    with compliance.as_(compliance.submitter) as client:
        batch_id = client.post("/v1/batches", files={"file": ("staff.zip", upload)}).json()["id"]
        assert wait_for_batch(client, batch_id)["done"] == 3
        assert archive_gone(compliance.stack, batch_id)
        result = client.get(f"/v1/batches/{batch_id}/result")
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        outputs = {name: archive.read(name) for name in photos}
        report = json.loads(archive.read("report.json"))

    records = _records(compliance, batch_id=batch_id)
    images = {r["path"]: r for r in records if r["event"] == "image"}
    assert set(images) == {*photos, "staff/README.txt"}
    assert images["staff/README.txt"]["outcome"] == "skipped"
    assert images["staff/README.txt"]["input_sha256"] is None  # never inflated
    detectors = FaceFinder().detectors_for(Profile.DEFAULT)
    models = {detector.name: detector.model_sha256 for detector in detectors}
    for path, data in photos.items():
        record = images[path]
        assert record["outcome"] == "done"
        assert record["input_sha256"] == _sha256(data)
        assert record["output_sha256"] == _sha256(outputs[path])
        assert record["faces"] >= 1
        assert record["detectors"] == models
        assert record["params"]["profile"] == "default"
        assert (record["key_id"], record["client"]) == (compliance.submitter_id, "127.0.0.1")
    for image in report["images"]:
        record = images[image["path"]]
        assert image["job_id"] == record["job_id"]
        for field in ("input_sha256", "output_sha256", "faces"):
            assert image[field] == record[field], (image["path"], field)
        if image["status"] == "done":
            assert image["boxes"] == record["boxes"]
    # The originals are the ZIP's entries: deleted with it, after the last image.
    deleted = [r for r in records if r["event"] in ("original_deleted", "keys_destroyed")]
    assert {r["job_id"] for r in deleted[:-1]} == {images[path]["job_id"] for path in photos}
    assert [r["event"] for r in deleted] == ["original_deleted"] * 3 + ["keys_destroyed"]
    assert deleted[-1]["reason"].startswith("1 data keys destroyed")


def test_a_duplicate_upload_reuses_the_stored_result_and_is_audited(compliance, astronaut_jpeg):
    photo = _distinct_jpeg(astronaut_jpeg, 30)
    with compliance.as_(compliance.submitter) as client:
        first = client.post("/v1/images?wait=30", files={"file": ("a.jpg", photo)})
        second = client.post("/v1/images", files={"file": ("b.jpg", photo)})
        assert second.status_code == 202
        assert second.json()["status"] == "done"  # answered at once, from the stored result
        second_id = second.json()["id"]
        assert client.get(f"/v1/jobs/{second_id}/result").content == first.content
        # Other parameters are another result: computed again.
        third = client.post(
            "/v1/images?wait=30", files={"file": ("a.jpg", photo), "mode": (None, "fill")}
        )
        assert third.status_code == 200
        assert third.content != first.content
        # Each job owns its own copy: deleting the first leaves the second's result.
        assert client.delete(f"/v1/jobs/{first.headers['X-Job-Id']}").status_code == 204
        assert client.get(f"/v1/jobs/{second_id}/result").content == first.content
    # The worker never saw the second job: one record, the gateway's, and no original to delete.
    (record,) = _records(compliance, job_id=second_id)
    assert record["event"] == "image"
    assert record["reused_from"] == first.headers["X-Job-Id"]
    assert record["input_sha256"] == _sha256(photo)
    assert record["output_sha256"] == _sha256(first.content)
    assert record["path"] == "b.jpg"


def test_a_duplicate_upload_under_another_key_is_processed_again(compliance, astronaut_jpeg):
    # Answered from the first key's result, it would tell the second key, at once, that someone
    # else had already processed this very photo.
    photo = _distinct_jpeg(astronaut_jpeg, 34)
    with compliance.as_(compliance.submitter) as first_key:
        assert first_key.post("/v1/images?wait=30", files={"file": ("a.jpg", photo)}).is_success
    with compliance.as_(compliance.other_submitter) as second_key:
        answer = second_key.post("/v1/images", files={"file": ("a.jpg", photo)})
        assert answer.status_code == 202
        assert answer.json()["status"] == "queued"
        assert wait_for_job(second_key, answer.json()["id"])["status"] == "done"
    (record,) = [
        r for r in _records(compliance, job_id=answer.json()["id"]) if r["event"] == "image"
    ]
    assert record["reused_from"] is None


def _data_keys(stack: Stack, job_id: str) -> list[bytes]:
    """The keys of the job's stored objects that can still be decrypted."""
    return sorted(stack.redis.scan_iter(match=f"fpg:datakey:{job_id}:*"))


def _stored_objects(stack: Stack, job_id: str) -> list[str]:
    return sorted(path.name for path in stack.blob_dir.glob(f"*/{job_id}:*"))


def test_originals_go_at_once_and_results_expire_when_the_record_says(compliance, astronaut_jpeg):
    with compliance.as_(compliance.submitter) as client:
        answer = client.post(
            "/v1/images", files={"file": ("a.jpg", _distinct_jpeg(astronaut_jpeg, 31))}
        )
        job_id = answer.json()["id"]
        assert wait_for_job(client, job_id)["status"] == "done"
    assert _data_keys(compliance.stack, job_id) == [f"fpg:datakey:{job_id}:result".encode()]
    assert _stored_objects(compliance.stack, job_id) == [f"{job_id}:result"]
    (on_disk,) = compliance.stack.blob_dir.glob(f"*/{job_id}:result")
    assert not on_disk.read_bytes().startswith(b"\xff\xd8")  # sealed, not a JPEG
    ttl = compliance.stack.redis.pttl(f"fpg:datakey:{job_id}:result") / 1000
    assert 0 < ttl <= RETENTION_SECONDS
    image, original = _records(compliance, job_id=job_id)
    assert (image["event"], original["event"]) == ("image", "original_deleted")
    planned = datetime.fromisoformat(str(image["result_expires_at"])).timestamp()
    assert abs(planned - (time.time() + ttl)) < 5
    for key in compliance.stack.redis.scan_iter(match=f"fpg:*{job_id}*"):
        assert compliance.stack.redis.ttl(key) > 0, key  # everything of the job expires


def test_delete_leaves_no_image_bytes_and_an_audit_event(compliance, astronaut_jpeg):
    photo = _distinct_jpeg(astronaut_jpeg, 32)
    with compliance.as_(compliance.submitter) as client:
        job_id = client.post("/v1/images", files={"file": ("a.jpg", photo)}).json()["id"]
        batch_id = client.post(
            "/v1/batches",
            files={"file": ("b.zip", zip_of({"p.jpg": _distinct_jpeg(astronaut_jpeg, 33)}))},
        ).json()["id"]
        wait_for_job(client, job_id)
        batch_job = wait_for_batch(client, batch_id)
        assert batch_job["done"] == 1
        assert archive_gone(compliance.stack, batch_id)
        batch_job_ids = [
            r["job_id"] for r in _records(compliance, batch_id=batch_id) if r["event"] == "image"
        ]
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert client.delete(f"/v1/batches/{batch_id}").status_code == 204
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
        assert client.get(f"/v1/batches/{batch_id}").status_code == 404
    for gone in (job_id, *batch_job_ids):
        assert list(compliance.stack.redis.scan_iter(match=f"fpg:*{gone}*")) == []
        assert _stored_objects(compliance.stack, gone) == []
    (job_event,) = [r for r in _records(compliance, job_id=job_id) if r["event"] == "job_deleted"]
    assert (job_event["key_id"], job_event["client"]) == (compliance.submitter_id, "127.0.0.1")
    (batch_event,) = _records(compliance, batch_id=batch_id, event="batch_deleted")
    assert batch_event["key_id"] == compliance.submitter_id
    # The results' data keys (the originals' went when they were processed: the batch's ZIP,
    # with its own record, when its last image was) are destroyed.
    (job_keys,) = [r for r in _records(compliance, job_id=job_id) if r["event"] == "keys_destroyed"]
    zip_keys, batch_keys = _records(compliance, batch_id=batch_id, event="keys_destroyed")
    for destroyed in (job_keys, zip_keys, batch_keys):
        assert destroyed["reason"].startswith("1 data keys destroyed")


def test_the_trail_holds_no_image_bytes(compliance):
    for record in _records(compliance):
        text = json.dumps(record)
        assert len(text) < 4096
        assert "/9j/" not in text  # base64 of a JPEG's first bytes


def test_verify_reports_the_first_changed_row_and_exports_verify_on_their_own(compliance):
    with compliance.as_(compliance.auditor) as auditor:
        report = auditor.get("/v1/audit/verify").json()
        assert report["ok"] is True
        assert report["records"] >= 10
        export = auditor.get("/v1/audit", params={"format": "jsonl"})
        assert export.headers["content-type"].startswith("application/x-ndjson")
        lines = export.text.splitlines()
        assert len(lines) == report["records"]
        assert verify_export(lines).ok
        table = list(csv.DictReader(io.StringIO(auditor.get("/v1/audit?format=csv").text)))
        assert [int(row["seq"]) for row in table] == list(range(1, len(lines) + 1))

        target = report["records"] // 2
        with compliance.audit.engine.begin() as connection:
            original = connection.exec_driver_sql(
                f"SELECT body FROM audit_records WHERE seq = {target}"
            ).scalar_one()
            connection.execute(
                audit_records.update()
                .where(audit_records.c.seq == target)
                .values(body=original.replace('"event"', '"event" '))
            )
        broken = auditor.get("/v1/audit/verify").json()
        with compliance.audit.engine.begin() as connection:
            connection.execute(
                audit_records.update().where(audit_records.c.seq == target).values(body=original)
            )
        assert (broken["ok"], broken["first_broken"]) == (False, target)
        assert auditor.get("/v1/audit/verify").json()["ok"] is True
