"""The audit tests run on both databases the store supports: an SQLite file and the PostgreSQL
server of this machine (skipped, saying so, where none answers)."""

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/audit.db"
    return str(request.getfixturevalue("postgres_url"))
