"""Engines for SQLite and PostgreSQL, and the schema migrations run at start.

Appending to a hash chain must be serialized across processes (a gateway and several worker
processes append at once): SQLite takes its write lock up front (``BEGIN IMMEDIATE``) when a
connection asks for ``immediate``; PostgreSQL takes a transaction-scoped advisory lock.
"""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
CHAIN_LOCK = 0x46504741  # "FPGA": the advisory lock key of the chain head (PostgreSQL)
MIGRATION_LOCK = 0x4650474D
SQLITE_BUSY_SECONDS = 30


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    # pysqlite's own transaction handling would defer BEGIN and ignore IMMEDIATE: take it over.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def lock_chain(connection: Connection) -> None:
    """Called first in a writing transaction: one writer at a time appends to the chain."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))


def migrate(engine: Engine) -> None:
    """``alembic upgrade head``, under a lock, so processes starting together migrate once."""
    with engine.connect().execution_options(immediate=True) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        command.upgrade(alembic_config(connection), "head")


def alembic_config(connection: Connection) -> Config:
    """The project's migrations, run on ``connection`` (inside its transaction)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config
