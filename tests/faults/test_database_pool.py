"""The connection pool after connections die (``app.db``), on the private cluster: a transaction
whose connection was killed under it gives the connection back, so the pool never runs dry and
the next request gets a fresh connection; waits for a connection are bounded."""

from __future__ import annotations

import asyncio
import errno
import socket

import asyncpg
import pytest
from piccolo.engine.postgres import PostgresEngine

from app import db
from tests.faults.conftest import new_database
from tests.faults.postgres import PrivatePostgres

POOL = 2


async def _engine(cluster: PrivatePostgres) -> PostgresEngine:
    engine = db.make_engine(await new_database(cluster))
    assert isinstance(engine, PostgresEngine)
    await engine.start_connection_pool(min_size=1, max_size=POOL)
    return engine


async def _kill_backend(cluster: PrivatePostgres, pid: int) -> None:
    admin = await asyncpg.connect(cluster.url())
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


DEAD = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


async def _die_in_a_transaction(engine: PostgresEngine, cluster: PrivatePostgres) -> None:
    async with engine.transaction():
        [row] = await engine.run_ddl("SELECT pg_backend_pid() AS pid")
        await _kill_backend(cluster, row["pid"])
        await engine.run_ddl("SELECT 1")  # on the dead connection


async def test_a_transaction_whose_connection_died_gives_it_back(
    private_postgres: PrivatePostgres,
) -> None:
    engine = await _engine(private_postgres)
    try:
        for _ in range(POOL * 3):  # more failures than the pool has connections
            with pytest.raises(DEAD) as failure:
                await _die_in_a_transaction(engine, private_postgres)
            assert db.is_unavailable(failure.value), repr(failure.value)
        async with asyncio.timeout(db.ACQUIRE_TIMEOUT / 2):
            async with engine.transaction():
                [row] = await engine.run_ddl("SELECT 1 AS one")
                assert row["one"] == 1
            [row] = await engine.run_ddl("SELECT 2 AS two")
            assert row["two"] == 2
    finally:
        await engine.close_connection_pool()


async def test_a_failed_commit_gives_the_connection_back(
    private_postgres: PrivatePostgres,
) -> None:
    """A COMMIT that fails on a healthy connection (here a deferred unique constraint; also a
    serialization failure): Piccolo's own transaction raised before handing the connection back,
    so after ``max_size`` of these every later query waited for a connection forever."""
    engine = await _engine(private_postgres)
    try:
        await engine.run_ddl("CREATE TABLE pairs (n int, UNIQUE (n) DEFERRABLE INITIALLY DEFERRED)")
        for _ in range(POOL * 3):
            with pytest.raises(asyncpg.UniqueViolationError):
                await _commit_a_duplicate(engine)
        async with asyncio.timeout(db.ACQUIRE_TIMEOUT / 2):
            [row] = await engine.run_ddl("SELECT count(*) AS n FROM pairs")
            assert row["n"] == 0
    finally:
        await engine.close_connection_pool()


async def _commit_a_duplicate(engine: PostgresEngine) -> None:
    async with engine.transaction():
        await engine.run_ddl("INSERT INTO pairs VALUES (1), (1)")


async def test_waiting_for_a_pooled_connection_is_bounded(
    private_postgres: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "ACQUIRE_TIMEOUT", 0.5)
    engine = await _engine(private_postgres)
    held = [await engine.pool.acquire() for _ in range(POOL)]
    try:
        with pytest.raises(TimeoutError) as failure:
            await engine.run_ddl("SELECT 1")
        assert db.is_unavailable(failure.value)
        with pytest.raises(TimeoutError):
            async with engine.transaction():
                pass
    finally:
        for connection in held:
            await engine.pool.release(connection)
        await engine.close_connection_pool()


def test_what_counts_as_the_database_being_unavailable() -> None:
    assert db.is_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert db.is_unavailable(TimeoutError())
    assert db.is_unavailable(OSError("Multiple exceptions: [Errno 111] ..."))
    assert db.is_unavailable(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert db.is_unavailable(socket.gaierror(-2, "Name or service not known"))
    assert db.is_unavailable(asyncpg.CannotConnectNowError("the database system is starting up"))
    assert db.is_unavailable(asyncpg.TooManyConnectionsError("too many clients already"))
    assert db.is_unavailable(asyncpg.ConnectionDoesNotExistError("connection was closed"))
    assert db.is_unavailable(asyncpg.InterfaceError("connection is closed"))
    # Bugs stay bugs (500): a wrong query, a missing file, another interface misuse.
    assert not db.is_unavailable(asyncpg.UndefinedTableError("relation does not exist"))
    assert not db.is_unavailable(FileNotFoundError(2, "No such file"))
    assert not db.is_unavailable(OSError("image file is truncated"))
    assert not db.is_unavailable(asyncpg.InterfaceError("another operation is in progress"))
    assert not db.is_unavailable(ValueError("no"))


async def test_the_web_process_limits_each_statement(private_postgres: PrivatePostgres) -> None:
    """``create_app`` starts the pool with ``COMMAND_TIMEOUT``: a statement the database does not
    finish (a lock wait, an unreachable host) ends with TimeoutError, a 503, not a hung request."""
    engine = db.make_engine(await new_database(private_postgres))
    await db.start(engine, command_timeout=0.3)
    try:
        with pytest.raises(TimeoutError) as failure:
            await engine.run_ddl("SELECT pg_sleep(5)")
        assert db.is_unavailable(failure.value)
        [row] = await engine.run_ddl("SELECT 1 AS one")  # the pool goes on
        assert row["one"] == 1
    finally:
        await db.stop(engine)
