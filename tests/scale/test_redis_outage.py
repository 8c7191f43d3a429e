"""Two ``portico serve`` instances whose Redis goes away and comes back: no request fails,
sessions and sign-out keep working through PostgreSQL, the per-address throttle counts per
process meanwhile, each instance warns once (without the Redis password), and both go back to
Redis by themselves when it returns.

This test runs its own ``redis-server`` (with a password) on a free port, so it can stop it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import POSTGRES_URL
from tests.helpers import MAX
from tests.scale.cluster import (
    HOST,
    Cluster,
    attempt_path,
    free_port,
    notice_of,
    running_cluster,
)

PASSWORD = "redis-password-never-logged"

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (set PORTICO_TEST_POSTGRES_URL)"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@{HOST}:{self.port}/0"

    def start(self) -> None:
        options = {
            "bind": HOST,
            "port": str(self.port),
            "requirepass": PASSWORD,
            "save": "",
            "appendonly": "no",
            "dir": str(self.directory),
        }
        arguments = [part for name, value in options.items() for part in (f"--{name}", value)]
        self.process = subprocess.Popen(
            ["redis-server", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def wait_up(self) -> None:
        async with asyncio.timeout(10):
            while True:
                try:
                    _reader, writer = await asyncio.open_connection(HOST, self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 10)
        self.process = None


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        await server.wait_up()
        yield server
    finally:
        await server.stop()


async def _pages(cluster: Cluster, path: str = "/portal") -> list[int]:
    return [(await cluster.page(instance, path)).status_code for instance in (cluster.a, cluster.b)]


async def test_redis_going_away_and_coming_back(redis_server, tmp_path_factory):
    var_dir = Path(tmp_path_factory.mktemp("scale-outage"))
    async with running_cluster(
        var_dir, redis_url=redis_server.url, redis_prefix="outage:"
    ) as cluster:
        a, b = cluster.a, cluster.b
        # Signed in with Redis up: the session is cached by both instances.
        requested = await cluster.request_code(a, MAX)
        assert notice_of(requested) == "sent"
        code = await cluster.code_for(MAX, 1)
        code_page = attempt_path(requested)
        signed_in = await cluster.post(b, code_page, {"code": code}, token_from=code_page)
        assert signed_in.status_code == 303, signed_in.text
        session = cluster.client.cookies.get("portico_session")
        assert session
        cluster.tokens_seen.append(session)
        assert await _pages(cluster) == [200, 200]
        assert any(k.startswith("outage:session:") for k in await cluster.redis_keys())

        # Redis goes away: every page still answers, from PostgreSQL.
        await redis_server.stop()
        for _ in range(3):
            assert await _pages(cluster) == [200, 200]
        assert await _pages(cluster, "/portal/invoices") == [200, 200]
        # The login page and code requests go on (the throttle counts per process meanwhile).
        login = await cluster.page(b, cluster.login_path)
        assert login.status_code == 200
        # Sign out on A while Redis is away: the session ends on B too (PostgreSQL says so).
        signed_out = await cluster.post(a, "/portal/sign-out", {}, token_from="/portal")
        assert signed_out.status_code == 303
        async with httpx.AsyncClient(headers={"Cookie": f"portico_session={session}"}) as old:
            for instance in (a, b):
                response = await old.get(instance.url + "/portal")
                assert response.status_code == 401, instance.name
        for instance in (a, b):
            text = instance.log_text()
            assert "Redis is unavailable" in text, instance.name
            assert text.count("Redis is unavailable") <= 2  # not once per request
            assert PASSWORD not in text
            assert '"status":500' not in text.replace(" ", "")

        # Redis comes back (empty, as after any restart): both instances use it again.
        redis_server.start()
        await redis_server.wait_up()
        await asyncio.sleep(5.5)  # the breaker's pause after the last failure
        for _ in range(2):
            await cluster.page(a, cluster.login_path)
            await cluster.post(b, cluster.login_path, {"email": "x"}, token_from=cluster.login_path)
        keys = await cluster.redis_keys()
        assert any(k.startswith("outage:throttle:login:") for k in keys), keys
        async with asyncio.timeout(10):
            while not all("Redis is reachable again." in i.log_text() for i in (a, b)):
                await cluster.page(a, cluster.login_path)
                await cluster.post(
                    a, cluster.login_path, {"email": "x"}, token_from=cluster.login_path
                )
                await asyncio.sleep(0.2)
        # The old cookie is still refused on both, with Redis back.
        async with httpx.AsyncClient(headers={"Cookie": f"portico_session={session}"}) as old:
            for instance in (a, b):
                assert (await old.get(instance.url + "/portal")).status_code == 401
