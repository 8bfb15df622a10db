"""The planned expiry of each image's result as a column of its own, indexed, so the gateway's
expiry sweep reads the images that are due instead of parsing every record still in retention.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_CHUNK = 1000


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as table:
        table.add_column(sa.Column("result_expires_at", sa.String(32)))
    op.create_index("ix_audit_records_result_expires_at", "audit_records", ["result_expires_at"])
    _copy_expiry_out_of_bodies()


def _copy_expiry_out_of_bodies() -> None:
    """Image records written before this revision: the column takes the value their body holds,
    as the chain check expects of every copied column."""
    records = sa.table(
        "audit_records",
        sa.column("seq", sa.BigInteger),
        sa.column("event", sa.String),
        sa.column("body", sa.Text),
        sa.column("result_expires_at", sa.String),
    )
    connection = op.get_bind()
    after = 0
    while rows := connection.execute(
        sa.select(records.c.seq, records.c.body)
        .where(records.c.event == "image", records.c.seq > after)
        .order_by(records.c.seq)
        .limit(BACKFILL_CHUNK)
    ).all():
        updates = [
            {"row_seq": row.seq, "expires_at": json.loads(row.body).get("result_expires_at")}
            for row in rows
        ]
        connection.execute(
            records.update()
            .where(records.c.seq == sa.bindparam("row_seq"))
            .values(result_expires_at=sa.bindparam("expires_at")),
            updates,
        )
        after = rows[-1].seq


def downgrade() -> None:
    op.drop_index("ix_audit_records_result_expires_at", "audit_records")
    with op.batch_alter_table("audit_records") as table:
        table.drop_column("result_expires_at")
