"""Database engines: SQLite (default, WAL, immediate write transactions) or PostgreSQL (pool).

One way to open a write transaction everywhere: ``async with db.write():``. Reads need none.

PostgreSQL going away (restart, failover, network) must make requests fail fast and the process
recover by itself once it is back:

- connecting gives up after ``CONNECT_TIMEOUT``; waiting for a free pooled connection after
  ``ACQUIRE_TIMEOUT`` (asyncpg's and Piccolo's default is to wait forever); in the web process
  (``start(engine, command_timeout=COMMAND_TIMEOUT)``) a statement after ``COMMAND_TIMEOUT``, so
  no request hangs on a dead, unreachable or saturated database (commands such as ``migrate``
  keep no statement limit: an index build may take longer);
- asyncpg's pool reconnects a connection found closed at its next use;
- a transaction whose ``BEGIN``, ``COMMIT`` or ``ROLLBACK`` fails gives its connection back to
  the pool, terminated (Piccolo's own transaction kept it checked out forever, so after
  ``max_size`` such failures every request waited for a connection that never came back).

The errors that mean "the database is unavailable" are listed in ``UNAVAILABLE``; the web layer
answers them with a 503 page (``app.web.errors``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from app.sqlite_engine import PooledSQLiteEngine

# Piccolo finds its app registry through this module path (its own CLI included).
os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")

log = logging.getLogger("portico.db")

_engine: Engine | None = None

CONNECT_TIMEOUT = 5.0  # seconds to open a connection (TCP, TLS, authentication)
COMMAND_TIMEOUT = 30.0  # seconds for one statement of a web request
ACQUIRE_TIMEOUT = 10.0  # seconds to wait for a pooled connection (a reconnect included)
POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 20

# Errors that mean the database cannot be reached right now (not a bug in a query).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # connection lost or refused by the server
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # terminated by a restart
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # The protocol out of step with the server: seen when the server ends a connection (a restart
    # terminating its backends) while a statement is being sent. A fresh connection fixes it.
    asyncpg.InternalClientError,
    ConnectionError,  # refused, reset, aborted (OSError subclasses)
    TimeoutError,  # connect, acquire or statement timeout
)  # other OSErrors count only with a network errno (``is_unavailable``)


NETWORK_ERRNOS = frozenset(
    {
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ETIMEDOUT,
        errno.EADDRNOTAVAIL,
    }
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database is unreachable (and not that a query is wrong)."""
    if isinstance(error, asyncpg.InterfaceError):
        # asyncpg: "connection is closed", "… was closed in the middle of operation", and, for a
        # pooled connection lost inside a transaction, "… has been released back to the pool".
        message = str(error)
        return "closed" in message or "released back to the pool" in message
    if isinstance(error, OSError) and not isinstance(error, (ConnectionError, TimeoutError)):
        # FileNotFoundError, a truncated image and friends are bugs, not outages: only
        # network-level errors count (socket.gaierror; a plain OSError with a network errno, or
        # asyncio's "Multiple exceptions: …" after trying each address of a host).
        if isinstance(error, socket.gaierror):
            return True
        return type(error) is OSError and (
            error.errno in NETWORK_ERRNOS or str(error).startswith("Multiple exceptions")
        )
    return isinstance(error, UNAVAILABLE)


class _Transaction(PostgresTransaction):
    """Piccolo's transaction, except that a connection whose ``BEGIN``, ``COMMIT`` or
    ``ROLLBACK`` failed is always handed back to the pool (terminated, so the pool opens a fresh
    one). The rest, nesting included, is Piccolo's."""

    async def get_connection(self):
        if self.engine.pool:
            return await self.engine.pool.acquire(timeout=ACQUIRE_TIMEOUT)
        return await self.engine.get_new_connection()

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            self.transaction = self.connection.transaction()
            await self.begin()
        except BaseException:
            await self._give_back(broken=True)
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        if self._parent:
            return exception is None
        broken = False
        try:
            if exception is not None:
                if not self._rolled_back:
                    try:
                        await self.rollback()
                    except Exception as error:
                        # The connection is gone or unusable; terminating it rolls back on the
                        # server. The original exception is the one worth raising.
                        log.warning("rollback failed (%s)", type(error).__name__)
                        broken = True
            elif not self._committed and not self._rolled_back:
                try:
                    await self.commit()
                except BaseException:
                    broken = True
                    raise
        finally:
            self.engine.current_transaction.reset(self.context)
            await self._give_back(broken=broken)
        return exception is None

    async def _give_back(self, *, broken: bool) -> None:
        connection = self.connection
        try:
            if broken and not connection.is_closed():
                connection.terminate()  # a pooled connection returns its slot to the pool
            if self.engine.pool:
                await self.engine.pool.release(connection, timeout=CONNECT_TIMEOUT)
            elif not broken:
                await connection.close()
        except Exception as error:  # released already (a connection lost is), or gone
            log.debug("giving back a connection: %s", type(error).__name__)


class PorticoPostgresEngine(PostgresEngine):
    """``PostgresEngine`` with bounded waits (see the module docstring)."""

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return _Transaction(engine=self, allow_nested=allow_nested)

    async def _run_in_pool(self, query: str, args=None):
        if not self.pool:
            raise ValueError("A pool isn't currently running.")
        # The wait bounded by asyncio.timeout rather than acquire(timeout=...), whose wait_for
        # starts a task for every query outside a transaction.
        async with asyncio.timeout(ACQUIRE_TIMEOUT):
            connection = await self.pool.acquire()
        try:
            return await connection.fetch(query, *(args or []))
        finally:
            await self.pool.release(connection)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(unquote(url.removeprefix("sqlite:///")))
        path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: how long a writer waits for the lock before "database is locked".
        # Pooled: queries outside transactions reuse open connections (app.sqlite_engine).
        return PooledSQLiteEngine(path=str(path), timeout=30)
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        return PorticoPostgresEngine(
            config={"dsn": url, "timeout": CONNECT_TIMEOUT},
            extensions=(),
        )
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


async def _reset_pooled(connection: asyncpg.Connection) -> None:
    """What the pool runs as a connection comes back. asyncpg's default sends a reset query
    (``RESET ALL; UNLISTEN *; …``) every time: a second round trip for each query Piccolo runs
    outside a transaction. Portico keeps no session state (no ``SET``, ``LISTEN``, cursors or
    session advisory locks); a transaction left open is rolled back by asyncpg before this runs,
    and is reset here again should one remain."""
    if connection.is_in_transaction():
        await connection.reset()


async def start(engine: Engine, *, command_timeout: float | None = None) -> None:
    """Open the PostgreSQL pool (``command_timeout``: seconds per statement, None for no limit);
    on SQLite, switch the file to WAL."""
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            reset=_reset_pooled,
            command_timeout=command_timeout,
        )
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
    elif isinstance(engine, PooledSQLiteEngine):
        engine.close()  # its threads and their connections


class Sql:
    """Parameterised SQL written once, with ``{}`` placeholders, for both engines: for the
    few reads on every request, where Piccolo's per-call query building would cost more than the
    query (``fetch``)."""

    def __init__(self, text: str) -> None:
        count = text.count("{}")
        self.postgres = text.format(*(f"${n}" for n in range(1, count + 1)))
        self.sqlite = text.format(*(["?"] * count))


async def fetch(sql: Sql, *args: Any) -> list[Any]:
    """The rows of ``sql`` (mappings: ``row["column"]``), outside any transaction: on PostgreSQL
    from the pool (with its bounded waits), on SQLite from a pooled connection."""
    engine = current()
    if isinstance(engine, PostgresEngine):
        return await engine._run_in_pool(sql.postgres, list(args))
    return await engine._run_in_new_connection(sql.sqlite, list(args))


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
