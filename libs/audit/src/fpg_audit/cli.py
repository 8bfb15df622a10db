"""``fpg-audit`` (verify and export the trail) and ``fpg-keys`` (create, revoke, list API keys).

Both read ``FPG_AUDIT_DATABASE_URL``, like the gateway and the workers, or ``--database``.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fpg_audit.export import FileFormat, verify_export, write_export
from fpg_audit.keys import Role
from fpg_audit.settings import AuditSettings
from fpg_audit.store import AuditFilter, AuditStore


def _database(args: argparse.Namespace) -> str:
    return str(args.database or AuditSettings().audit_database_url)


def audit_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fpg-audit", description=__doc__)
    parser.add_argument("--database", help="SQLAlchemy URL (default: FPG_AUDIT_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check the hash chain; exit 1 if it is broken")
    verify.add_argument("--file", type=Path, help="check a JSON Lines export instead")
    export = commands.add_parser("export", help="write records to stdout")
    export.add_argument("--format", choices=[f.value for f in FileFormat], default="jsonl")
    for name in ("since", "until", "batch_id", "job_id", "key_id", "event"):
        export.add_argument(f"--{name.replace('_', '-')}", dest=name)
    args = parser.parse_args(argv)

    if args.command == "verify":
        if args.file is not None:
            with args.file.open(encoding="utf-8") as lines:
                report = verify_export(lines)
        else:
            store = AuditStore.connect(_database(args))
            report = store.verify()
            store.close()
        print(report.model_dump_json())
        return 0 if report.ok else 1
    store = AuditStore.connect(_database(args))
    where = AuditFilter(
        since=args.since,
        until=args.until,
        batch_id=args.batch_id,
        job_id=args.job_id,
        key_id=args.key_id,
        event=args.event,
    )
    write_export(store.iter_records(where), FileFormat(args.format), sys.stdout)
    store.close()
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
