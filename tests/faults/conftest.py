"""Fixtures for the fault tests: a private PostgreSQL cluster (``postgres.py``) and the real
server as a subprocess (``live.py``). Nothing here touches the shared PostgreSQL server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.faults.live import Server, environment, seed_demo
from tests.faults.postgres import PrivatePostgres, binaries, free_port
from tests.helpers import demo, demo_portal, fake_clock, portal, shared_app, shop  # noqa: F401


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    if binaries() is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


async def new_database(cluster: PrivatePostgres) -> str:
    """A fresh database in the private cluster (running); returns its URL."""
    name = f"faults_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(cluster.url())
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return cluster.url(name)


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator:
    """``await make_server(database_url, smtp_port)``: the demo seeded into that database and
    ``portico serve`` started on a free port; stopped at the end of the test."""
    servers: list[Server] = []

    async def make(database_url: str, smtp_port: int) -> Server:
        port = free_port()
        var_dir = tmp_path / f"var{len(servers)}"
        var_dir.mkdir()
        env = environment(database_url, var_dir, port, smtp_port)
        server = Server(env=env, port=port, log_path=var_dir / "server.log")
        server.login_path = await seed_demo(env)
        servers.append(server)
        await server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
