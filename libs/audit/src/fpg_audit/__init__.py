"""The audit trail: one tamper-evident record per processed image and per deletion, and API keys.

Records form a hash chain (each carries the hash of the one before it) in an SQL database:
an SQLite file by default, PostgreSQL in a deployment. No image data is ever stored, only hashes.
See docs/compliance.md for the record format and how to verify an export independently.
"""

from fpg_audit.chain import GENESIS_HASH, AuditEvent, AuditRecord, canonical_json, record_hash
from fpg_audit.keys import ApiKey, Role
from fpg_audit.store import AuditFilter, AuditStore, ChainReport

__all__ = [
    "GENESIS_HASH",
    "ApiKey",
    "AuditEvent",
    "AuditFilter",
    "AuditRecord",
    "AuditStore",
    "ChainReport",
    "Role",
    "canonical_json",
    "record_hash",
]
