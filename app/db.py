"""Database engines: SQLite (default, WAL, immediate write transactions) or PostgreSQL (pool).

One way to open a write transaction everywhere: ``async with db.write():``. Reads need none.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

# Piccolo finds its app registry through this module path (its own CLI included).
os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")

_engine: Engine | None = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(unquote(url.removeprefix("sqlite:///")))
        path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: how long a writer waits for the lock before "database is locked".
        return SQLiteEngine(path=str(path), timeout=30)
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        return PostgresEngine(config={"dsn": url}, extensions=())
    raise ValueError(f"unsupported database URL: {url}")


def is_postgres(engine: Engine | None = None) -> bool:
    return isinstance(engine or current(), PostgresEngine)


def current() -> Engine:
    if _engine is None:
        raise RuntimeError("no database engine bound: call app.db.bind(engine) first")
    return _engine


def bind(engine: Engine) -> None:
    """Point every table (and Piccolo's migration machinery) at ``engine``."""
    global _engine
    _engine = engine
    from piccolo.apps.migrations.tables import Migration

    from app import piccolo_conf
    from app.piccolo_app import APP_CONFIG

    piccolo_conf.DB = engine
    for table in [*APP_CONFIG.table_classes, Migration]:
        table._meta.db = engine


async def start(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=2, max_size=20)
    elif isinstance(engine, SQLiteEngine):
        # WAL is a property of the file: readers never block the writer and vice versa.
        connection = sqlite3.connect(engine.path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()


async def stop(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


@asynccontextmanager
async def write():
    """A write transaction: ``BEGIN IMMEDIATE`` on SQLite so concurrent read-then-write
    transactions queue instead of failing with "database is locked"."""
    engine = current()
    kwargs: dict[str, Any] = {}
    if isinstance(engine, SQLiteEngine):
        kwargs["transaction_type"] = TransactionType.immediate
    async with engine.transaction(**kwargs) as transaction:
        yield transaction


async def migrate(engine: Engine) -> None:
    """Apply every pending migration in ``piccolo_migrations/``."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    bind(engine)
    result = await run_forwards(app_name="portico", migration_id="all")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")
