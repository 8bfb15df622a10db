"""The audit store on both databases it supports: the same tests on an SQLite file and on the
PostgreSQL server of this machine (skipped, saying so, where none answers)."""

import json
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text, update

from fpg_audit import GENESIS_HASH, AuditEvent, AuditFilter, AuditStore, Role, record_hash
from fpg_audit.chain import canonical_json, seal
from fpg_audit.cli import audit_main, keys_main
from fpg_audit.database import alembic_config, migrate
from fpg_audit.export import FileFormat, verify_export, write_export
from fpg_audit.schema import api_keys, audit_records, metadata
from jobstore.audit_events import result_expired

from .stores import append_from_threads, emptied_after_use


@pytest.fixture
def store(database_url: str) -> Iterator[AuditStore]:
    yield from emptied_after_use(AuditStore.connect(database_url))


def _image(number: int, **fields: object) -> AuditEvent:
    return AuditEvent(
        event="image",
        job_id=f"{number:032x}",
        batch_id=str(fields.pop("batch_id", "b" * 32)),
        outcome="done",
        input_sha256="a" * 64,
        output_sha256="b" * 64,
        faces=1,
        boxes=[[10.5, 20.25, 30.0, 40.0, 0.91]],
        detectors={"centerface": "c" * 64},
        params={"mode": "blur", "padding": 1.3},
        **fields,  # type: ignore[arg-type]
    )


def test_append_links_each_record_to_the_one_before(store):
    first, second = store.append(_image(1), _image(2))
    (third,) = store.append(AuditEvent(event="job_deleted", job_id=f"{2:032x}"))
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert third.hash == record_hash(third.model_dump(mode="json"))
    assert store.verify().model_dump() == {
        "ok": True,
        "records": 3,
        "first_broken": None,
        "problem": None,
        "last_hash": third.hash,
        "checkpoints": None,
        "findings": [],
    }


def test_records_round_trip_exactly(store):
    (sealed,) = store.append(_image(1, key_id="key_1", client="10.0.0.7"))
    (stored,) = store.records()
    assert stored == sealed
    assert stored.boxes == [[10.5, 20.25, 30.0, 40.0, 0.91]]


def test_migrations_run_once_and_again_harmlessly(database_url, store):
    store.append(_image(1))
    again = AuditStore.connect(database_url)  # a second process starting: nothing to do
    assert again.count() == 1
    again.close()


def test_upgrading_copies_each_expiry_out_of_records_written_before(store):
    """Records sealed at revision 0001, before result_expires_at had a column, get it filled from
    their body by 0002, so the chain still verifies and the sweep finds them."""
    expires_at = "2000-01-01T00:00:00.000000Z"
    events = [_image(1, result_expires_at=expires_at), AuditEvent(event="job_deleted", job_id="d")]
    at_0001 = ("seq", "time", "event", "outcome", "job_id", "batch_id", "key_id")
    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
        prev_hash = GENESIS_HASH
        for seq, event in enumerate(events, start=1):
            record = seal(event, seq, "2026-11-26T00:00:00.000000Z", prev_hash)
            body = record.body()
            row = {column: body[column] for column in at_0001}
            connection.execute(
                insert(audit_records).values(
                    **row, body=canonical_json(body), prev_hash=prev_hash, hash=record.hash
                )
            )
            prev_hash = record.hash
    migrate(store.engine)

    with store.engine.connect() as connection:
        copied = connection.execute(
            select(audit_records.c.seq, audit_records.c.result_expires_at).order_by("seq")
        ).all()
    assert [tuple(row) for row in copied] == [(1, expires_at), (2, None)]
    assert store.verify().ok
    swept = store.record_expired_results(
        "2026-11-26T00:00:00.000000Z", lambda _job: False, result_expired
    )
    assert [record.job_id for record in swept] == [events[0].job_id]


@pytest.mark.parametrize(
    "tampering",
    [
        "UPDATE audit_records SET body = replace(body, '\"faces\":1', '\"faces\":0') WHERE seq = 3",
        "UPDATE audit_records SET batch_id = 'cccccccccccccccccccccccccccccccc' WHERE seq = 3",
        "UPDATE audit_records SET hash = CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END"
        " || substr(hash, 2) WHERE seq = 3",
        "DELETE FROM audit_records WHERE seq = 3",
    ],
    ids=["content", "filter column", "hash", "removed"],
)
def test_a_changed_row_breaks_verification_at_that_row(store, tampering):
    store.append(*(_image(number) for number in range(1, 6)))
    with store.engine.begin() as connection:
        connection.exec_driver_sql(tampering)
    report = store.verify()
    assert not report.ok
    expected = 4 if tampering.startswith("DELETE") else 3
    assert report.first_broken == expected, report.problem
    assert report.problem


def test_a_rehashed_row_still_breaks_the_next_link(store):
    """Someone who changes a row and recomputes its hash breaks the following record instead."""
    store.append(*(_image(number) for number in range(1, 4)))
    (row,) = store.records(AuditFilter(job_id=f"{2:032x}"))
    forged = {**row.body(), "faces": 0}
    with store.engine.begin() as connection:
        connection.execute(
            update(audit_records)
            .where(audit_records.c.seq == 2)
            .values(
                body=json.dumps(forged, sort_keys=True, separators=(",", ":")),
                hash=record_hash(forged),
            )
        )
    report = store.verify()
    assert (report.ok, report.first_broken) == (False, 3)


def test_concurrent_writers_keep_one_unbroken_chain(database_url, store):
    writers = [AuditStore.connect(database_url) for _ in range(4)]

    append_from_threads(writers, _image)
    report = store.verify()
    assert (report.ok, report.records) == (True, 40)


def test_filters_select_by_time_batch_key_and_event(store):
    store.append(_image(1, batch_id="1" * 32, key_id="key_a"), _image(2, batch_id="2" * 32))
    (late,) = store.append(AuditEvent(event="batch_deleted", batch_id="1" * 32, key_id="key_a"))
    assert [r.seq for r in store.records(AuditFilter(batch_id="1" * 32))] == [1, 3]
    assert [r.seq for r in store.records(AuditFilter(key_id="key_a"))] == [1, 3]
    assert [r.seq for r in store.records(AuditFilter(event="batch_deleted"))] == [3]
    assert [r.seq for r in store.records(AuditFilter(since=late.time))] == [3]
    assert [r.seq for r in store.records(AuditFilter(until=late.time))] == [1, 2]
    assert [r.seq for r in store.records(after_seq=1, limit=1)] == [2]


def test_an_export_verifies_on_its_own_and_shows_a_change(store, tmp_path):
    store.append(*(_image(number) for number in range(1, 5)))
    export = tmp_path / "audit.jsonl"
    with export.open("w") as out:
        write_export(store.iter_records(), FileFormat.JSONL, out)
    lines = export.read_text().splitlines()
    assert verify_export(lines).ok
    assert audit_main(["verify", "--file", str(export)]) == 0
    changed = json.loads(lines[1])
    changed["faces"] = 7
    lines[1] = json.dumps(changed)
    report = verify_export(lines)
    assert (report.ok, report.first_broken) == (False, 2)


def test_a_record_written_before_a_field_existed_exports_as_written_and_verifies(store, tmp_path):
    """A body sealed without ``frames`` and ``tracks`` (records older than videos) is exported
    with exactly its own fields: with the newer fields added as null it would hash differently."""
    fields = {
        **_image(1).model_dump(mode="json", exclude={"frames", "tracks"}),
        "seq": 1,
        "time": "2026-11-26T00:00:00.000000Z",
        "prev_hash": GENESIS_HASH,
    }
    with store.engine.begin() as connection:
        connection.execute(
            insert(audit_records).values(
                seq=1,
                time=fields["time"],
                event="image",
                outcome="done",
                job_id=fields["job_id"],
                batch_id=fields["batch_id"],
                body=canonical_json(fields),
                prev_hash=GENESIS_HASH,
                hash=record_hash(fields),
            )
        )
    store.append(AuditEvent(event="video", job_id="v" * 32, outcome="done", frames=50, tracks=2))
    export = tmp_path / "audit.jsonl"
    with export.open("w") as out:
        write_export(store.iter_records(), FileFormat.JSONL, out)
    old, new = (json.loads(line) for line in export.read_text().splitlines())

    assert "frames" not in old
    assert (new["frames"], new["tracks"]) == (50, 2)
    assert verify_export(export.read_text().splitlines()).ok


def test_csv_export_has_one_row_per_record(store, tmp_path):
    store.append(_image(1), _image(2))
    path = tmp_path / "audit.csv"
    with path.open("w") as out:
        write_export(store.iter_records(), FileFormat.CSV, out)
    rows = path.read_text().splitlines()
    assert len(rows) == 3
    assert rows[0].startswith("event,job_id,batch_id,path,outcome")


def test_keys_are_stored_only_as_hashes_and_revocable(store):
    key, secret = store.create_key("hr-archive", Role.SUBMITTER)
    assert store.authenticate(secret) == key
    assert store.authenticate(secret + "x") is None
    with store.engine.connect() as connection:
        stored = " ".join(
            str(value) for row in connection.execute(api_keys.select()) for value in row
        )
    assert secret not in stored
    assert store.revoke_key(key.id)
    assert not store.revoke_key(key.id)
    assert store.authenticate(secret) is None
    assert [k.revoked_at is not None for k in store.list_keys()] == [True]


def test_command_lines_create_list_revoke_and_verify(database_url, store, capsys):
    assert (
        keys_main(["--database", database_url, "create", "--role", "auditor", "--name", "dpo"]) == 0
    )
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("fpg_")
    key = store.authenticate(secret)
    assert key is not None
    assert key.role is Role.AUDITOR
    assert keys_main(["--database", database_url, "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["name"], listed["role"]) == (key.id, "dpo", "auditor")
    assert keys_main(["--database", database_url, "revoke", key.id]) == 0
    assert keys_main(["--database", database_url, "revoke", key.id]) == 1
    store.append(_image(1))
    assert audit_main(["--database", database_url, "verify"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET outcome = 'failed'"))
    assert audit_main(["--database", database_url, "verify"]) == 1
    assert json.loads(capsys.readouterr().out)["first_broken"] == 1


def test_expired_results_are_recorded_once_and_only_when_gone(store):
    past, future = "2000-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"
    store.append(
        _image(1, result_expires_at=past),
        _image(2, result_expires_at=future),
        _image(3, result_expires_at=past),
        AuditEvent(event="job_deleted", job_id=f"{3:032x}"),
        _image(4, result_expires_at=past, batch_id="d" * 32),
        AuditEvent(event="batch_deleted", batch_id="d" * 32),
        _image(5, result_expires_at=past),
    )
    still_stored = {f"{5:032x}"}  # its key outlived the plan: not recorded as expired yet
    now = "2026-11-26T00:00:00.000000Z"

    first = store.record_expired_results(now, lambda job_id: job_id in still_stored, result_expired)
    again = store.record_expired_results(now, lambda job_id: job_id in still_stored, result_expired)

    assert [(r.event, r.job_id, r.reason) for r in first] == [
        ("result_expired", f"{1:032x}", f"retention ended at {past}")
    ]
    assert first[0].output_sha256 == "b" * 64
    assert again == []
    assert store.verify().ok


def test_migrations_build_the_schema_the_code_declares(store):
    with store.engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), metadata)
    assert drift == []
