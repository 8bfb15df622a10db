"""The record format and its hash chain, in plain Python so an auditor can re-check an export.

A record's ``hash`` is the SHA-256 of the canonical JSON of every other field, ``seq`` and
``prev_hash`` included: keys sorted, no whitespace, UTF-8, Python's ``json.dumps`` number format.
The first record's ``prev_hash`` is 64 zeros. Changing, inserting or deleting a record breaks the
link at that record.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

GENESIS_HASH = "0" * 64

EventKind = Literal[
    "image",  # one image processed (or refused): outcome done, failed or skipped
    "video",  # one video processed: outcome done or failed
    "original_deleted",  # the worker deleted the uploaded original
    "result_deleted",  # a result removed before its planned expiry
    "result_expired",  # a result's retention ended and the store no longer holds it
    "job_deleted",  # DELETE /v1/jobs/{id}: every stored byte of the job purged
    "batch_deleted",  # DELETE /v1/batches/{id}: every job of the batch purged
    "keys_destroyed",  # the data keys of deleted objects destroyed: every copy is unreadable
]
Outcome = Literal["done", "failed", "skipped"]


def iso_utc(moment: datetime | float) -> str:
    """Fixed-width ISO 8601 in UTC, so text order is time order in every database: the one time
    format of records, keys and filters. A Unix time, or a datetime (without a zone: UTC)."""
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    else:
        aware = datetime.fromtimestamp(moment, UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> str:
    return iso_utc(datetime.now(UTC))


class AuditEvent(BaseModel):
    """What a writer knows; the store adds ``seq``, ``time``, ``prev_hash`` and ``hash``."""

    event: EventKind
    job_id: str | None = None
    batch_id: str | None = None
    path: str | None = Field(default=None, description="File name, or the path inside a ZIP.")
    outcome: Outcome | None = None
    reason: str | None = Field(default=None, description="Why it failed, was skipped or deleted.")
    input_sha256: str | None = None
    output_sha256: str | None = None
    faces: int | None = Field(
        default=None, description="Faces anonymized; in a video, face regions over all frames."
    )
    frames: int | None = Field(default=None, description="A video's frames.")
    tracks: int | None = Field(default=None, description="A video's face tracks.")
    boxes: list[list[float]] | None = Field(
        default=None, description="Anonymized regions as [x, y, w, h, score] in image pixels."
    )
    detectors: dict[str, str] | None = Field(
        default=None, description="Detector name to the SHA-256 of its model file."
    )
    params: dict[str, Any] | None = None
    key_id: str | None = Field(default=None, description="The API key that asked, if any.")
    client: str | None = Field(default=None, description="The client address the gateway saw.")
    result_expires_at: str | None = Field(
        default=None, description="When the stored result expires (its Redis time-to-live)."
    )
    reused_from: str | None = Field(
        default=None, description="A duplicate upload: the job whose stored result was reused."
    )


class AuditRecord(AuditEvent):
    seq: int
    time: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"hash"})


def canonical_json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a record without its own ``hash``."""
    body = {key: value for key, value in fields.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def seal(event: AuditEvent, seq: int, time: str, prev_hash: str) -> AuditRecord:
    fields = {**event.model_dump(mode="json"), "seq": seq, "time": time, "prev_hash": prev_hash}
    return AuditRecord.model_validate({**fields, "hash": record_hash(fields)})
