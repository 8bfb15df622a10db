"""Alembic environment: always given a connection by ``fpg_audit.database.migrate``."""

from alembic import context

from fpg_audit.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
