"""The audit trail and the API keys in one SQL database (SQLite by default, or PostgreSQL)."""

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, func, insert, or_, select, update

from fpg_audit.chain import GENESIS_HASH, AuditEvent, AuditRecord, canonical_json, seal, utc_now
from fpg_audit.checkpoints import CheckpointLog
from fpg_audit.database import lock_chain, make_engine, migrate
from fpg_audit.keys import ApiKey, Role, new_key_id, new_secret, secret_sha256
from fpg_audit.schema import api_keys, audit_records
from fpg_audit.settings import AuditSettings
from fpg_audit.verification import ChainReport, CheckpointCheck, WalkedRecord, verify_chain

log = logging.getLogger(__name__)

INDEXED = ("time", "event", "outcome", "job_id", "batch_id", "key_id", "result_expires_at")
VERIFY_CHUNK = 1000


@dataclass(frozen=True)
class AuditFilter:
    since: str | None = None  # ISO 8601 UTC, inclusive
    until: str | None = None  # exclusive
    batch_id: str | None = None
    job_id: str | None = None
    key_id: str | None = None
    event: str | None = None


@dataclass(frozen=True)
class PruneResult:
    deleted: int
    pruned_seq: int  # the last record deleted; the first one kept links to its hash
    pruned_hash: str


class AuditStore:
    def __init__(self, engine: Engine, checkpoints: CheckpointLog | None = None) -> None:
        self.engine = engine
        self.checkpoints = checkpoints

    @classmethod
    def connect(
        cls, url: str, *, migrate_schema: bool = True, checkpoints: CheckpointLog | None = None
    ) -> "AuditStore":
        engine = make_engine(url)
        if migrate_schema:
            migrate(engine)
        return cls(engine, checkpoints)

    @classmethod
    def from_settings(
        cls, settings: AuditSettings, database_url: str | None = None
    ) -> "AuditStore":
        """The store the settings name, with its checkpoints (none when no key is set)."""
        return cls.connect(
            database_url or settings.audit_database_url,
            checkpoints=CheckpointLog.from_settings(settings),
        )

    def close(self) -> None:
        self.engine.dispose()

    # -- the chain --------------------------------------------------------------------------

    def append(self, *events: AuditEvent) -> list[AuditRecord]:
        """Seal and store the events, in order, in one transaction at the head of the chain."""
        with self._chain_transaction() as connection:
            sealed = _append_locked(connection, events)
        self._checkpoint_head(sealed)
        return sealed

    def record_expired_results(
        self,
        now: str,
        result_still_stored: Callable[[str], bool],
        expired_event: Callable[[AuditRecord], AuditEvent],
    ) -> list[AuditRecord]:
        """Append ``expired_event`` of every done image or video whose planned expiry has passed
        and whose result the store no longer holds: the proof that the retention was applied.

        Runs under the chain lock, so gateways sweeping at once never record an expiry twice; jobs
        already deleted (alone or with their batch) or already recorded expired are left out.
        """
        closed = select(audit_records.c.job_id).where(
            audit_records.c.event.in_(("result_expired", "result_deleted", "job_deleted")),
            audit_records.c.job_id.is_not(None),
        )
        deleted_batches = select(audit_records.c.batch_id).where(
            audit_records.c.event == "batch_deleted", audit_records.c.batch_id.is_not(None)
        )
        due = select(audit_records.c.body, audit_records.c.hash).where(
            audit_records.c.event.in_(("image", "video")),
            audit_records.c.outcome == "done",
            audit_records.c.result_expires_at <= now,
            audit_records.c.job_id.not_in(closed),
            or_(
                audit_records.c.batch_id.is_(None),
                audit_records.c.batch_id.not_in(deleted_batches),
            ),
        )
        with self._chain_transaction() as connection:
            images = [_record(row) for row in connection.execute(due.order_by(audit_records.c.seq))]
            expired = [
                expired_event(image)
                for image in images
                if image.job_id is not None and not result_still_stored(image.job_id)
            ]
            sealed = _append_locked(connection, expired)
        self._checkpoint_head(sealed)
        return sealed

    def prune(
        self, *, before_seq: int | None = None, before_time: str | None = None
    ) -> PruneResult:
        """Delete the records before ``before_seq``, or written before ``before_time``, and sign
        a ``pruned`` checkpoint of the last one deleted, so the records left still verify.

        The newest record always stays: new records must link to it. Refused without checkpoints
        (the rest could not be verified) and on a chain that does not verify (the checkpoint would
        sign over the damage)."""
        if self.checkpoints is None:
            raise PruneRefusedError("pruning needs checkpoints: set FPG_AUDIT_CHECKPOINT_KEY")
        report = self.verify()
        if not report.ok:
            raise PruneRefusedError(f"the trail does not verify: {report.problem}")
        seq = audit_records.c.seq
        with self._chain_transaction() as connection:
            head = connection.execute(_CHAIN_HEAD).first()
            if head is None:
                return PruneResult(0, 0, GENESIS_HASH)
            last_deleted = select(func.max(seq)).where(seq < head.seq)
            if before_seq is not None:
                last_deleted = last_deleted.where(seq < before_seq)
            if before_time is not None:
                last_deleted = last_deleted.where(audit_records.c.time < before_time)
            pruned_seq = connection.execute(last_deleted).scalar_one()
            if pruned_seq is None:
                return PruneResult(0, 0, GENESIS_HASH)
            pruned_hash = connection.execute(
                select(audit_records.c.hash).where(seq == pruned_seq)
            ).scalar_one()
            deleted = connection.execute(delete(audit_records).where(seq <= pruned_seq)).rowcount
            # Before the commit: a prune whose checkpoint could not be written deletes nothing.
            self.checkpoints.record_pruned(pruned_seq, pruned_hash, head.seq, head.hash)
        return PruneResult(deleted, pruned_seq, pruned_hash)

    def records(
        self, where: AuditFilter | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRecord]:
        query = _filtered(select(audit_records.c.body, audit_records.c.hash), where)
        query = query.where(audit_records.c.seq > after_seq).order_by(audit_records.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_record(row) for row in rows]

    def iter_records(self, where: AuditFilter | None = None) -> Iterator[AuditRecord]:
        after = 0
        while chunk := self.records(where, after_seq=after, limit=VERIFY_CHUNK):
            yield from chunk
            after = chunk[-1].seq

    def verify(self) -> ChainReport:
        """Walk the whole chain against the checkpoints: every finding, up to the first record
        whose link, hash or columns do not hold."""
        return verify_chain(self._walked_records(), CheckpointCheck.of_log(self.checkpoints))

    def _walked_records(self) -> Iterator[WalkedRecord]:
        after = 0
        with self.engine.connect() as connection:
            while rows := connection.execute(
                select(audit_records)
                .where(audit_records.c.seq > after)
                .order_by(audit_records.c.seq)
                .limit(VERIFY_CHUNK)
            ).all():
                for row in rows:
                    yield _walked(row._mapping)
                after = rows[-1].seq

    @contextmanager
    def _chain_transaction(self) -> Iterator[Connection]:
        """A transaction that holds the chain lock: one writer at a time at the head."""
        connection = self.engine.connect().execution_options(immediate=True)
        with connection, connection.begin():
            lock_chain(connection)
            yield connection

    def _checkpoint_head(self, sealed: Sequence[AuditRecord]) -> None:
        """After the commit, so a checkpoint never names records that were rolled back. A
        checkpoint that cannot be written does not undo the records; ``verify`` reports it."""
        if self.checkpoints is None or not sealed:
            return
        head = sealed[-1]
        try:
            self.checkpoints.record_head(head.seq, head.hash, head.time)
        except (OSError, ValueError):
            log.exception("audit checkpoint not written after seq %d", head.seq)

    # -- API keys ---------------------------------------------------------------------------

    def create_key(self, name: str, role: Role) -> tuple[ApiKey, str]:
        """A new key and its secret, which is returned here once and never stored."""
        secret = new_secret()
        key = ApiKey(id=new_key_id(), name=name, role=role, created_at=utc_now())
        with self.engine.begin() as connection:
            connection.execute(
                insert(api_keys).values(
                    **key.model_dump(mode="json"), secret_sha256=secret_sha256(secret)
                )
            )
        return key, secret

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
        return bool(changed.rowcount)

    def list_keys(self) -> list[ApiKey]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_key(row._mapping) for row in rows]

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(api_keys).where(
                    api_keys.c.secret_sha256 == secret_sha256(secret),
                    api_keys.c.revoked_at.is_(None),
                )
            ).first()
        return None if row is None else _key(row._mapping)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(audit_records)).scalar_one()
            )


# Built once: a statement given its values as parameters is compiled once and reused, where
# ``insert().values(...)`` would build and coerce a new statement for every record.
_CHAIN_HEAD = (
    select(audit_records.c.seq, audit_records.c.hash).order_by(audit_records.c.seq.desc()).limit(1)
)
_INSERT_RECORD = insert(audit_records)


def _append_locked(connection: Connection, events: Sequence[AuditEvent]) -> list[AuditRecord]:
    """Seal ``events`` onto the head of the chain; the caller holds the chain lock."""
    head = connection.execute(_CHAIN_HEAD).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    sealed: list[AuditRecord] = []
    rows: list[dict[str, Any]] = []
    for audit_event in events:
        seq += 1
        record = seal(audit_event, seq, utc_now(), prev_hash)
        body = record.body()
        rows.append(
            {
                "seq": seq,
                "body": canonical_json(body),
                "prev_hash": prev_hash,
                "hash": record.hash,
                **{column: body[column] for column in INDEXED},
            }
        )
        sealed.append(record)
        prev_hash = record.hash
    if rows:
        connection.execute(_INSERT_RECORD, rows)
    return sealed


class PruneRefusedError(Exception):
    """A prune that would leave records nobody can verify."""


def _filtered(query: Select[Any], where: AuditFilter | None) -> Select[Any]:
    if where is None:
        return query
    c = audit_records.c
    if where.since:
        query = query.where(c.time >= where.since)
    if where.until:
        query = query.where(c.time < where.until)
    for column, value in (
        (c.batch_id, where.batch_id),
        (c.job_id, where.job_id),
        (c.key_id, where.key_id),
        (c.event, where.event),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


def _walked(row: Any) -> WalkedRecord:
    """A stored row as the chain walk sees it: its text's fields, and what is wrong with how it
    is stored (text that is not the canonical JSON hashed, columns that disagree with it)."""
    try:
        body = json.loads(row["body"])
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return WalkedRecord(
            {"seq": row["seq"], "hash": row["hash"]}, "the stored record is not a JSON object"
        )
    return WalkedRecord({**body, "hash": row["hash"]}, _storage_problem(row, body))


def _storage_problem(row: Any, body: dict[str, Any]) -> str | None:
    if canonical_json(body) != row["body"]:
        return "the stored text is not the canonical JSON that was hashed"
    if body.get("seq") != row["seq"] or row["prev_hash"] != body.get("prev_hash"):
        return "the record's seq or prev_hash columns differ from its content"
    for column in INDEXED:
        if row[column] != body.get(column):
            return f"the {column} column differs from the record's content"
    return None


def _record(row: Any) -> AuditRecord:
    """A record from its stored text and hash."""
    return AuditRecord.model_validate({**json.loads(row.body), "hash": row.hash})


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
