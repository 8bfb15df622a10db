"""Signed checkpoints of the chain, kept outside the database the chain lives in.

A hash chain shows a record changed or removed in the middle, but a chain cut short at its end, or
re-hashed from an edited record onwards, is still a valid chain. A checkpoint says "the chain had
record ``seq`` with hash ``hash`` at ``time``", signed (HMAC-SHA256) with a key the database does
not hold, in an append-only JSON Lines file the database administrator cannot reach. ``verify``
then notices a missing tail or a rewrite. Each checkpoint signs the previous one's ``mac`` too, so
a checkpoint removed from the file breaks that chain in turn.

Kinds: ``head`` is the head of the chain, written after appends at least every ``every_records``
records or ``every_seconds`` seconds of records; ``pruned`` is the last record deleted by
``fpg-audit prune``, the hash the first remaining record links to.
"""

import fcntl
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from fpg_audit.chain import canonical_json, utc_now
from fpg_audit.settings import AuditSettings

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoints.jsonl"
GENESIS_MAC = "0" * 64
# One checkpoint line is about 300 bytes: the last 4 KiB of the file always hold the last one.
TAIL_BYTES = 4096

CheckpointKind = Literal["head", "pruned"]


class Checkpoint(BaseModel):
    number: int  # 1, 2, 3, ... in the file, with no gaps
    kind: CheckpointKind
    seq: int
    hash: str
    time: str  # when it was written
    prev_mac: str  # the previous checkpoint's mac; 64 zeros for the first
    mac: str  # HMAC-SHA256 of the canonical JSON of every other field

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude={"mac"})


def sign(key: bytes, body: dict[str, Any]) -> str:
    return hmac.new(key, canonical_json(body).encode(), hashlib.sha256).hexdigest()


def signature_holds(key: bytes, checkpoint: Checkpoint) -> bool:
    return hmac.compare_digest(sign(key, checkpoint.body()), checkpoint.mac)


def parse_checkpoint(line: str) -> Checkpoint | None:
    """A checkpoint from one line of the file, or None when the line is not one."""
    try:
        return Checkpoint.model_validate_json(line)
    except ValidationError:
        return None


def seconds_between(earlier: str, later: str) -> float:
    def parse(moment: str) -> datetime:
        return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    return (parse(later) - parse(earlier)).total_seconds()


@dataclass(frozen=True)
class CheckpointPolicy:
    every_records: int
    every_seconds: float

    def due(self, last: Checkpoint | None, seq: int, time: str) -> bool:
        """Whether record ``seq``, written at ``time``, needs a checkpoint after ``last``: the
        rule writers follow, and so the rule ``verify`` holds the chain to."""
        if last is None:
            return True
        return (
            seq - last.seq >= self.every_records
            or seconds_between(last.time, time) >= self.every_seconds
        )


class CheckpointLog:
    """The checkpoint file of one audit store. Writers (a gateway and many worker processes, on
    one host or sharing the directory) take an exclusive ``flock`` on it, so each new checkpoint
    is numbered and chained after the one really last in the file."""

    def __init__(self, directory: Path, key: bytes, policy: CheckpointPolicy) -> None:
        self.path = directory / CHECKPOINT_FILE
        self.key = key
        self.policy = policy

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> "CheckpointLog | None":
        """None, with a warning, when no key is set: then nothing anchors the chain's end."""
        if settings.audit_checkpoint_key is None:
            log.warning(
                "audit checkpoints are off (FPG_AUDIT_CHECKPOINT_KEY is unset): removing the "
                "newest audit records, or re-hashing the chain after an edit, goes unnoticed; "
                "set it outside local use"
            )
            return None
        return cls(
            settings.audit_checkpoint_dir,
            settings.audit_checkpoint_key.get_secret_value().encode(),
            CheckpointPolicy(
                settings.audit_checkpoint_every_records, settings.audit_checkpoint_every_seconds
            ),
        )

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text(encoding="utf-8").splitlines() if line]

    def record_head(self, seq: int, hash_: str, time: str) -> Checkpoint | None:
        """Checkpoint the head ``seq`` (written at ``time``) if the policy says one is due."""
        with self._locked() as descriptor:
            last = _last_checkpoint(descriptor)
            if last is not None and last.seq >= seq:
                return None  # another writer already checkpointed a later head
            if not self.policy.due(last, seq, time):
                return None
            return self._write(descriptor, last, "head", seq, hash_)

    def record_pruned(
        self, pruned_seq: int, pruned_hash: str, head_seq: int, head_hash: str
    ) -> None:
        """Records up to ``pruned_seq`` are being deleted: sign where the rest starts, and the
        head, so the records left are covered by a checkpoint at once."""
        with self._locked() as descriptor:
            last = _last_checkpoint(descriptor)
            pruned = self._write(descriptor, last, "pruned", pruned_seq, pruned_hash)
            self._write(descriptor, pruned, "head", head_seq, head_hash)

    @contextmanager
    def _locked(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield descriptor
        finally:
            os.close(descriptor)  # releases the lock

    def _write(
        self, descriptor: int, last: Checkpoint | None, kind: CheckpointKind, seq: int, hash_: str
    ) -> Checkpoint:
        body = {
            "number": 1 if last is None else last.number + 1,
            "kind": kind,
            "seq": seq,
            "hash": hash_,
            "time": utc_now(),
            "prev_mac": GENESIS_MAC if last is None else last.mac,
        }
        checkpoint = Checkpoint.model_validate({**body, "mac": sign(self.key, body)})
        os.write(descriptor, (json.dumps(checkpoint.model_dump()) + "\n").encode())
        os.fsync(descriptor)
        return checkpoint


def _last_checkpoint(descriptor: int) -> Checkpoint | None:
    size = os.fstat(descriptor).st_size
    tail = os.pread(descriptor, TAIL_BYTES, max(0, size - TAIL_BYTES)).decode()
    lines = tail.splitlines()
    if not lines:
        return None
    last = parse_checkpoint(lines[-1])
    if last is None:
        # Chaining onto a line we cannot read would hide it: stop, and let the caller say so.
        raise ValueError(f"the last line of the checkpoint file is not a checkpoint: {lines[-1]!r}")
    return last
