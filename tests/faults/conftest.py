"""Fixtures for the fault tests: a private PostgreSQL cluster (``postgres.py``) and the real
server as a subprocess (``live.py``). Nothing here touches the shared PostgreSQL server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.faults.live import Server, environment
from tests.faults.postgres import PrivatePostgres, binaries
from tests.helpers import demo, demo_portal, fake_clock, portal, shared_app, shop  # noqa: F401
from tests.portico_process import free_port, seed_demo


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


async def new_database(cluster: PrivatePostgres, template: str = "") -> str:
    """A fresh database in the private cluster (running), empty or a copy of ``template``;
    returns its URL."""
    name = f"faults_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(cluster.url())
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()
    return cluster.url(name)


@pytest.fixture(scope="session")
async def demo_template(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """A database in the private cluster with the demo seeded once (``portico demo``), to copy
    for each test: ``(database name, login path)``."""
    url = await new_database(private_postgres)
    var_dir = tmp_path_factory.mktemp("demo-template")
    login_path = await seed_demo(environment(url, var_dir, free_port(), 25))
    return url.rsplit("/", 1)[1], login_path


@pytest.fixture
async def make_server(
    tmp_path: Path, private_postgres: PrivatePostgres, demo_template: tuple[str, str]
) -> AsyncIterator:
    """``await make_server(smtp_port, database_port=None)``: a fresh copy of the demo database
    and ``portico serve`` on a free port, connecting to PostgreSQL on ``database_port`` (a
    proxy's) or straight to the private cluster; stopped at the end of the test."""
    servers: list[Server] = []

    async def make(smtp_port: int, database_port: int | None = None) -> Server:
        template, login_path = demo_template
        direct = url = await new_database(private_postgres, template)
        if database_port is not None:
            url = url.replace(f":{private_postgres.port}/", f":{database_port}/")
        port = free_port()
        var_dir = tmp_path / f"var{len(servers)}"
        var_dir.mkdir()
        env = environment(url, var_dir, port, smtp_port)
        server = Server(env=env, port=port, log_path=var_dir / "server.log")
        server.login_path = login_path
        server.database_url = direct
        servers.append(server)
        await server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
