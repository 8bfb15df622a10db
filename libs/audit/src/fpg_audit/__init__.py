"""The audit trail: one tamper-evident record per processed image and per deletion, and API keys.

Records form a hash chain (each carries the hash of the one before it) in an SQL database:
an SQLite file by default, PostgreSQL in a deployment. No image data is ever stored, only hashes.
Signed checkpoints in a file outside the database anchor the chain's end (fpg_audit.checkpoints).
See docs/compliance.md for the record format and how to verify an export independently.
"""

from fpg_audit.chain import GENESIS_HASH, AuditEvent, AuditRecord, canonical_json, record_hash
from fpg_audit.keys import ApiKey, Role
from fpg_audit.store import AuditFilter, AuditStore
from fpg_audit.verification import ChainReport, Finding

__all__ = [
    "GENESIS_HASH",
    "ApiKey",
    "AuditEvent",
    "AuditFilter",
    "AuditRecord",
    "AuditStore",
    "ChainReport",
    "Finding",
    "Role",
    "canonical_json",
    "record_hash",
]
