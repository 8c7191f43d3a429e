"""Shared fixtures.

Database tests take the ``db`` fixture and run once on SQLite and, when
``PORTICO_TEST_POSTGRES_URL`` is set (CI sets it), once more on PostgreSQL. Each backend gets a
fresh database migrated with the real migrations; tables are emptied before every test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")

from piccolo.engine.base import Engine

from app import db as database
from app.piccolo_app import APP_CONFIG
from app.settings import Settings

POSTGRES_URL = os.environ.get("PORTICO_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]
TEST_SECRET = "test-secret-key-" + "x" * 32

pytest_plugins = ["tests.fixtures.smtp", "tests.fixtures.redis"]

# The URL each engine was made from (engines have __slots__, so it cannot ride on them).
DATABASE_URLS: dict[int, str] = {}


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=BACKENDS)
async def database_engine(request, tmp_path_factory) -> AsyncIterator[Engine]:
    """A migrated database for this backend, shared by the session."""
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("sqlite")) / "portico.sqlite3"
        url = f"sqlite:///{path}"
        name = None
    else:
        name = f"portico_test_{os.getpid()}_{secrets.token_hex(3)}"
        await _admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
        url = _with_database(POSTGRES_URL, name)
    engine = database.make_engine(url)
    DATABASE_URLS[id(engine)] = url
    await database.start(engine)
    await database.migrate(engine)
    yield engine
    await database.stop(engine)
    if name:
        await _admin(POSTGRES_URL, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def db(database_engine: Engine) -> AsyncIterator[Engine]:
    """The backend's database, bound and emptied."""
    database.bind(database_engine)
    tables = list(reversed(APP_CONFIG.table_classes))
    if database.is_postgres(database_engine):
        names = ", ".join(f'"{t._meta.tablename}"' for t in tables)
        await database_engine.run_ddl(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    else:
        for table in tables:
            await table.delete(force=True)
    return database_engine


@pytest.fixture
def settings(database_engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        database_url=DATABASE_URLS[id(database_engine)],
        secret_key=TEST_SECRET,
        base_url="http://portal.test",
        mail_from="Acme Cloud <billing@acme.test>",
        var_dir=str(tmp_path),
        run_mail_worker=False,
    )
