"""Checkpoints anchor the chain outside its database: the tampering a chain alone cannot show
(a removed tail, a chain re-hashed after an edit, records appended past the last checkpoint), done
to the real database, is reported by ``verify``; pruning leaves a trail that still verifies."""

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from fpg_audit import AuditEvent, AuditStore
from fpg_audit.chain import canonical_json, seal
from fpg_audit.checkpoints import Checkpoint, CheckpointLog, CheckpointPolicy, parse_checkpoint
from fpg_audit.cli import audit_main
from fpg_audit.export import FileFormat, write_export
from fpg_audit.schema import audit_records
from fpg_audit.settings import AuditSettings
from fpg_audit.store import PruneRefusedError

from .stores import append_from_threads, emptied_after_use

KEY = "k" * 64
EVERY_RECORDS = 2


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"


def _log(directory: Path, every_records: int = EVERY_RECORDS) -> CheckpointLog:
    return CheckpointLog(directory, KEY.encode(), CheckpointPolicy(every_records, 3600.0))


@pytest.fixture
def store(database_url: str, checkpoint_dir: Path) -> Iterator[AuditStore]:
    yield from emptied_after_use(AuditStore.connect(database_url, checkpoints=_log(checkpoint_dir)))


@pytest.fixture
def cli_settings(monkeypatch: pytest.MonkeyPatch, database_url: str, checkpoint_dir: Path) -> str:
    """The environment ``fpg-audit`` reads, naming the store's database and checkpoints."""
    monkeypatch.setenv("FPG_AUDIT_DATABASE_URL", database_url)
    monkeypatch.setenv("FPG_AUDIT_CHECKPOINT_KEY", KEY)
    monkeypatch.setenv("FPG_AUDIT_CHECKPOINT_DIR", str(checkpoint_dir))
    monkeypatch.setenv("FPG_AUDIT_CHECKPOINT_EVERY_RECORDS", str(EVERY_RECORDS))
    return database_url


def _event(number: int) -> AuditEvent:
    return AuditEvent(event="image", job_id=f"{number:032x}", outcome="done", faces=1)


def _append(store: AuditStore, count: int) -> None:
    for number in range(1, count + 1):
        store.append(_event(number))


def _checkpoint_lines(store: AuditStore) -> list[str]:
    assert store.checkpoints is not None
    return store.checkpoints.lines()


def _checkpoints(store: AuditStore) -> list[Checkpoint]:
    return [c for line in _checkpoint_lines(store) if (c := parse_checkpoint(line)) is not None]


def _kinds(store: AuditStore) -> list[str]:
    return [finding.kind for finding in store.verify().findings]


def test_appends_write_signed_chained_checkpoints_at_least_every_n_records(store):
    _append(store, 6)
    checkpoints = _checkpoints(store)
    assert [(c.number, c.kind, c.seq) for c in checkpoints] == [
        (1, "head", 1),
        (2, "head", 3),
        (3, "head", 5),
    ]
    assert checkpoints[1].prev_mac == checkpoints[0].mac
    report = store.verify()
    assert (report.ok, report.records, report.checkpoints) == (True, 6, 3)


def test_deleting_the_tail_is_reported_as_truncated(store, cli_settings, capsys):
    _append(store, 5)  # checkpoints at seq 1, 3 and 5
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_records WHERE seq >= 4")
    report = store.verify()
    assert not report.ok
    assert (report.findings[0].kind, report.first_broken) == ("truncated", 4)
    assert "records 4 to 5 are missing at the end" in str(report.problem)
    assert audit_main(["verify"]) == 1
    assert "truncated: records 4 to 5" in capsys.readouterr().err


def test_a_tail_replaced_by_other_records_is_reported_as_rewritten(store):
    _append(store, 5)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_records WHERE seq >= 4")
    unchecked = AuditStore(store.engine)  # a writer without the key: no checkpoints
    unchecked.append(_event(40), _event(50))
    assert _kinds(store) == ["rewritten"]
    assert store.verify().first_broken == 5


def test_rehashing_the_chain_after_an_edit_is_reported_as_rewritten(store):
    _append(store, 5)  # checkpoints at seq 1, 3 and 5
    prev_hash = store.records()[0].hash
    with store.engine.begin() as connection:
        for record in store.records(after_seq=1):
            fields = record.model_dump(exclude={"seq", "time", "prev_hash", "hash"})
            if record.seq == 2:
                fields["faces"] = 0
            forged = seal(AuditEvent(**fields), record.seq, record.time, prev_hash)
            connection.execute(
                update(audit_records)
                .where(audit_records.c.seq == record.seq)
                .values(body=canonical_json(forged.body()), prev_hash=prev_hash, hash=forged.hash)
            )
            prev_hash = forged.hash
    report = store.verify()
    assert AuditStore(store.engine).verify().ok  # the chain alone holds: only checkpoints see it
    assert [f.kind for f in report.findings] == ["rewritten"]
    assert report.first_broken == 3
    assert "no longer has the hash checkpoint #2 signed" in str(report.problem)


def test_records_appended_past_the_last_checkpoint_are_reported(store):
    _append(store, 1)
    AuditStore(store.engine).append(_event(2), _event(3))  # no checkpoint for seq 2 and 3
    report = store.verify()
    assert [f.kind for f in report.findings] == ["checkpoint_missing"]
    assert report.first_broken == 3


def test_records_older_than_the_checkpoint_interval_without_one_are_reported(store, checkpoint_dir):
    store.append(_event(1))
    seconds = AuditStore(
        store.engine,
        CheckpointLog(checkpoint_dir, KEY.encode(), CheckpointPolicy(1000, 0.000001)),
    )
    assert seconds.verify().ok  # one record, one checkpoint
    AuditStore(store.engine).append(_event(2))  # no checkpoint: time passes beyond the interval
    assert [f.kind for f in seconds.verify().findings] == ["checkpoint_missing"]


def test_a_checkpoint_removed_from_the_file_is_reported(store):
    _append(store, 5)
    lines = _checkpoint_lines(store)
    assert store.checkpoints is not None
    store.checkpoints.path.write_text(lines[0] + "\n" + lines[2] + "\n")
    report = store.verify()
    assert [f.kind for f in report.findings] == ["checkpoint_missing"]
    assert "checkpoint #3 does not follow checkpoint #1" in str(report.problem)


def test_an_edited_checkpoint_does_not_count(store):
    _append(store, 5)
    lines = _checkpoint_lines(store)
    forged = json.loads(lines[-1])
    forged["seq"] = 4
    assert store.checkpoints is not None
    store.checkpoints.path.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    # The forged checkpoint (of seq 5) is ignored, so seq 4 and 5 stand past the last one, seq 3.
    assert _kinds(store) == ["checkpoint_invalid", "checkpoint_missing"]


def test_checkpoints_of_another_key_do_not_count(store, checkpoint_dir):
    _append(store, 3)
    other_key = CheckpointLog(checkpoint_dir, b"o" * 64, CheckpointPolicy(EVERY_RECORDS, 3600.0))
    kinds = _kinds(AuditStore(store.engine, other_key))
    assert kinds == ["checkpoint_invalid", "checkpoint_invalid", "checkpoint_missing"]


def test_pruning_keeps_a_trail_that_verifies(store, cli_settings, capsys):
    _append(store, 10)
    assert audit_main(["prune", "--before", "7"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert (pruned["deleted"], pruned["pruned_seq"]) == (6, 6)
    assert [r.seq for r in store.records()] == [7, 8, 9, 10]
    assert store.verify().ok
    _append(store, 3)  # new records still link on, and are checkpointed from the prune's head
    report = store.verify()
    assert (report.ok, report.records) == (True, 7), report.problem


def test_pruning_by_time_deletes_the_records_written_before_it(store):
    _append(store, 4)
    fourth = store.records()[3]
    result = store.prune(before_time=fourth.time)
    assert (result.deleted, result.pruned_seq) == (3, 3)
    assert store.verify().ok


def test_pruning_keeps_the_newest_record(store):
    _append(store, 3)
    assert store.prune(before_seq=100).pruned_seq == 2
    assert [r.seq for r in store.records()] == [3]
    assert store.verify().ok


def test_deleting_the_oldest_rows_without_prune_is_reported(store):
    _append(store, 6)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_records WHERE seq <= 2")
    report = store.verify()
    assert (report.findings[0].kind, report.first_broken) == ("truncated", 3)


def test_records_deleted_beyond_a_prune_are_reported(store):
    _append(store, 8)
    store.prune(before_seq=4)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_records WHERE seq = 4")
    report = store.verify()
    assert (report.findings[0].kind, report.first_broken) == ("truncated", 5)
    assert "records 4 to 4 are missing before the first record" in str(report.problem)


def test_pruning_is_refused_without_checkpoints_or_on_a_broken_trail(store):
    _append(store, 5)  # checkpoints at seq 1, 3 and 5
    with pytest.raises(PruneRefusedError, match="FPG_AUDIT_CHECKPOINT_KEY"):
        AuditStore(store.engine).prune(before_seq=3)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_records WHERE seq = 5")
    with pytest.raises(PruneRefusedError, match="does not verify"):
        store.prune(before_seq=3)
    assert store.count() == 4


def test_concurrent_writers_keep_one_checkpoint_chain(store, database_url, checkpoint_dir):
    writers = [
        AuditStore.connect(database_url, checkpoints=_log(checkpoint_dir, every_records=3))
        for _ in range(4)
    ]

    append_from_threads(writers, _event)
    report = writers[0].verify()
    assert (report.ok, report.records) == (True, 40), report.findings
    checkpoints = _checkpoints(writers[0])
    assert [c.number for c in checkpoints] == list(range(1, len(checkpoints) + 1))
    seqs = [c.seq for c in checkpoints]
    assert seqs == sorted(set(seqs))


def test_an_export_and_the_checkpoint_file_verify_without_the_database(
    store, cli_settings, tmp_path, capsys
):
    _append(store, 5)
    store.prune(before_seq=2)
    export, checkpoints = tmp_path / "audit.jsonl", tmp_path / "checkpoints.jsonl"
    with export.open("w") as out:
        write_export(store.iter_records(), FileFormat.JSONL, out)
    assert audit_main(["checkpoints", "export"]) == 0
    checkpoints.write_text(capsys.readouterr().out)
    offline = ["verify", "--file", str(export), "--checkpoints", str(checkpoints)]
    assert audit_main(offline) == 0
    assert json.loads(capsys.readouterr().out)["checkpoints"] == 5
    export.write_text("".join(export.read_text().splitlines(keepends=True)[:-1]))
    assert audit_main(offline) == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["kind"] == "truncated"


def test_without_a_key_checkpoints_are_off_with_a_warning(database_url, tmp_path, caplog):
    settings = AuditSettings(
        audit_database_url=database_url, audit_checkpoint_dir=tmp_path / "checkpoints"
    )
    with caplog.at_level(logging.WARNING, logger="fpg_audit.checkpoints"):
        store = AuditStore.from_settings(settings)
    try:
        assert "FPG_AUDIT_CHECKPOINT_KEY is unset" in caplog.text
        store.append(_event(1))
        assert store.verify().checkpoints is None
        assert not (tmp_path / "checkpoints").exists()
    finally:
        with store.engine.begin() as connection:
            connection.execute(delete(audit_records))
        store.close()


def _auditor_script() -> str:
    """The standard-library script docs/compliance.md gives the auditor."""
    text = (Path(__file__).parents[2] / "docs" / "compliance.md").read_text()
    after_marker = text.split("<!-- auditor-script", 1)[1]
    return after_marker.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_auditors_script_verifies_a_pruned_export_and_sees_a_cut_tail(store, tmp_path):
    _append(store, 6)
    store.prune(before_seq=3)
    _append(store, 2)
    with (tmp_path / "audit.jsonl").open("w") as out:
        write_export(store.iter_records(), FileFormat.JSONL, out)
    (tmp_path / "checkpoints.jsonl").write_text("\n".join(_checkpoint_lines(store)) + "\n")
    script = tmp_path / "check.py"
    script.write_text(_auditor_script())

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**os.environ, "FPG_AUDIT_CHECKPOINT_KEY": KEY},
            capture_output=True,
            text=True,
        )

    intact = run()
    assert intact.returncode == 0, intact.stderr
    assert "chain intact from seq 3 to 8" in intact.stdout
    export = tmp_path / "audit.jsonl"
    export.write_text("".join(export.read_text().splitlines(keepends=True)[:-2]))
    cut = run()
    assert cut.returncode != 0
    assert "records after seq 6 are missing" in cut.stderr
