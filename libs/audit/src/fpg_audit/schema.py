"""The tables. Changed only through a migration in ``migrations/versions`` (never ad-hoc DDL)."""

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text

metadata = MetaData()

# One row per record. ``body`` is the record's canonical JSON without its hash, exactly the text
# that was hashed; the other columns copy fields of it for filtering and are checked against it.
audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False),
    Column("event", String(32), nullable=False),
    Column("outcome", String(16)),
    Column("job_id", String(64)),
    Column("batch_id", String(64)),
    Column("key_id", String(64)),
    Column("result_expires_at", String(32)),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_records_time", "time"),
    Index("ix_audit_records_job_id", "job_id"),
    Index("ix_audit_records_batch_id", "batch_id"),
    Index("ix_audit_records_key_id", "key_id"),
    # The expiry sweep reads only the images that are due, not every one still within retention.
    Index("ix_audit_records_result_expires_at", "result_expires_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)
