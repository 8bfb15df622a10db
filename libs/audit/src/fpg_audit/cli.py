"""``fpg-audit`` (verify, export and prune the trail, export its checkpoints) and ``fpg-keys``
(create, revoke, list API keys).

Both read ``FPG_AUDIT_DATABASE_URL``, like the gateway and the workers, or ``--database``;
``fpg-audit`` reads the ``FPG_AUDIT_CHECKPOINT_*`` settings too.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fpg_audit.chain import iso_utc
from fpg_audit.checkpoints import CheckpointLog
from fpg_audit.export import FileFormat, verify_export, write_export
from fpg_audit.keys import Role
from fpg_audit.settings import AuditSettings
from fpg_audit.store import AuditFilter, AuditStore, PruneRefusedError
from fpg_audit.verification import ChainReport, CheckpointCheck


def _database(args: argparse.Namespace) -> str:
    return str(args.database or AuditSettings().audit_database_url)


def audit_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fpg-audit", description=__doc__)
    parser.add_argument("--database", help="SQLAlchemy URL (default: FPG_AUDIT_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify", help="check the chain and its checkpoints; exit 1 on any finding"
    )
    verify.add_argument("--file", type=Path, help="check a JSON Lines export instead")
    verify.add_argument(
        "--checkpoints", type=Path, help="with --file: an exported checkpoint file to check it by"
    )
    export = commands.add_parser("export", help="write records to stdout")
    export.add_argument("--format", choices=[f.value for f in FileFormat], default="jsonl")
    for name in ("since", "until", "batch_id", "job_id", "key_id", "event"):
        export.add_argument(f"--{name.replace('_', '-')}", dest=name)
    checkpoints = commands.add_parser("checkpoints", help="the checkpoint file")
    checkpoints.add_subparsers(dest="action", required=True).add_parser(
        "export", help="write the checkpoint file to stdout, for the auditor"
    )
    prune = commands.add_parser(
        "prune", help="delete old records, leaving a signed checkpoint the rest verifies from"
    )
    prune.add_argument(
        "--before",
        required=True,
        help="a seq (records before it go) or an ISO 8601 time (records written before it go)",
    )
    args = parser.parse_args(argv)
    settings = AuditSettings()

    if args.command == "verify" and args.file is not None:
        return _verify_file(args.file, args.checkpoints, settings)
    if args.command == "checkpoints":
        log = CheckpointLog.from_settings(settings)
        if log is None:
            return 1
        sys.stdout.writelines(line + "\n" for line in log.lines())
        return 0
    store = AuditStore.from_settings(settings, args.database)
    try:
        if args.command == "verify":
            return _report(store.verify())
        if args.command == "prune":
            return _prune(store, args.before)
        where = AuditFilter(
            since=args.since,
            until=args.until,
            batch_id=args.batch_id,
            job_id=args.job_id,
            key_id=args.key_id,
            event=args.event,
        )
        write_export(store.iter_records(where), FileFormat(args.format), sys.stdout)
        return 0
    finally:
        store.close()


def _verify_file(export: Path, checkpoint_file: Path | None, settings: AuditSettings) -> int:
    check = None
    if checkpoint_file is not None:
        log = CheckpointLog.from_settings(settings)
        if log is None:
            return 1
        with checkpoint_file.open(encoding="utf-8") as lines:
            check = CheckpointCheck.from_lines(
                [line for line in lines if line.strip()], log.key, log.policy
            )
    with export.open(encoding="utf-8") as lines:
        return _report(verify_export(lines, check))


def _report(report: ChainReport) -> int:
    """The report as JSON on stdout, each finding as a line on stderr; 1 on any finding."""
    print(report.model_dump_json())
    for finding in report.findings:
        print(f"{finding.kind}: {finding.message}", file=sys.stderr)
    return 0 if report.ok else 1


def _prune(store: AuditStore, before: str) -> int:
    try:
        if before.isdigit():
            result = store.prune(before_seq=int(before))
        else:
            result = store.prune(before_time=iso_utc(datetime.fromisoformat(before)))
    except PruneRefusedError as refused:
        print(f"not pruned: {refused}", file=sys.stderr)
        return 1
    print(json.dumps(result.__dict__))
    return 0


def keys_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fpg-keys", description="Create, revoke and list the gateway's API keys."
    )
    parser.add_argument("--database", help="SQLAlchemy URL (default: FPG_AUDIT_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="print a new key once; only its hash is stored")
    create.add_argument("--role", choices=[role.value for role in Role], required=True)
    create.add_argument("--name", required=True, help="who or what uses it")
    revoke = commands.add_parser("revoke", help="the key stops working at once")
    revoke.add_argument("key_id")
    commands.add_parser("list", help="ids, names, roles, created and revoked times")
    args = parser.parse_args(argv)

    store = AuditStore.connect(_database(args))
    try:
        if args.command == "create":
            key, secret = store.create_key(args.name, Role(args.role))
            print(f"{key.id} {key.role.value} {key.name}", file=sys.stderr)
            print("the key is shown this once; only its SHA-256 is stored:", file=sys.stderr)
            print(secret)
            return 0
        if args.command == "revoke":
            if not store.revoke_key(args.key_id):
                print(f"no active key {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}", file=sys.stderr)
            return 0
        for key in store.list_keys():
            print(json.dumps(key.model_dump(mode="json")))
        return 0
    finally:
        store.close()
