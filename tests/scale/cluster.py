"""Two real ``portico serve`` processes on one fresh PostgreSQL database (and optionally one
Redis), a real SMTP server in the test's event loop, and one browser (httpx, one cookie jar for
both instances: cookies ignore ports, as they would behind a load balancer that sends each request
to either instance). Used by the tests in ``tests/scale/``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
from aiosmtpd.smtp import SMTP

from tests.conftest import POSTGRES_URL, _admin, _with_database
from tests.fixtures.redis import REDIS_URL
from tests.fixtures.smtp import Inbox, body_text
from tests.helpers import csrf_token
from tests.portico_process import (
    HOST,
    free_port,
    seed_demo,
    spawn_serve,
    stop,
    wait_until_answers,
)

CODE_LINE = re.compile(r"#(\d{6})\s*$", re.MULTILINE)


@dataclass
class Instance:
    name: str
    url: str
    log_path: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"instance {self.name} exited with {self.process.returncode}:\n"
                + "\n".join(self.log_text().splitlines()[-40:])
            )


@dataclass
class Cluster:
    redis: bool
    a: Instance
    b: Instance
    login_path: str
    database_url: str
    inbox: Inbox
    database: asyncpg.Connection
    client: httpx.AsyncClient  # the browser: one cookie jar for both instances
    redis_url: str
    redis_prefix: str
    tokens_seen: list[str] = field(default_factory=list)  # codes and cookies: never in a log

    async def redis_keys(self) -> list[str]:
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.redis_url or REDIS_URL)
        try:
            return [
                key.decode()
                async for key in client.scan_iter(match=self.redis_prefix + "*", count=500)
            ]
        finally:
            await client.aclose()

    async def redis_get(self, key: str) -> bytes | None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.redis_url or REDIS_URL)
        try:
            return await client.get(self.redis_prefix + key)
        finally:
            await client.aclose()

    async def page(self, instance: Instance, path: str) -> httpx.Response:
        return await self.client.get(instance.url + path)

    async def post(
        self, instance: Instance, path: str, data: dict[str, str], *, token_from: str
    ) -> httpx.Response:
        """Submit a form as a browser does: the token from the page the form is on."""
        page = await self.page(instance, token_from)
        assert page.status_code == 200, (token_from, page.status_code)
        return await self.client.post(
            instance.url + path, data={**data, "_csrf_token": csrf_token(page.text)}
        )

    async def request_code(self, instance: Instance, email: str) -> httpx.Response:
        response = await self.post(
            instance, self.login_path, {"email": email}, token_from=self.login_path
        )
        assert response.status_code == 303, response.text
        return response

    async def code_for(self, email: str, count: int) -> str:
        """The code in the ``count``-th email to ``email`` (waiting for it to arrive)."""
        await mail_to(self.inbox, email, count)
        found = CODE_LINE.search(body_text(self.inbox.to(email)[count - 1]))
        assert found, "no @host #code line in the passcode email"
        self.tokens_seen.append(found.group(1))
        return found.group(1)


async def mail_to(inbox: Inbox, email: str, count: int, seconds: float = 20.0) -> None:
    """Wait until ``count`` messages to ``email`` have arrived."""
    async with asyncio.timeout(seconds):
        while True:
            inbox.arrived.clear()
            if len(inbox.to(email)) >= count:
                return
            await inbox.arrived.wait()


def notice_of(response: httpx.Response) -> str:
    found = re.search(r"[?&]notice=(\w+)", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def attempt_path(response: httpx.Response) -> str:
    """``/p/login/<token>/code/<attempt>`` from the redirect after a code request."""
    return urlsplit(response.headers["location"]).path


async def _wait_ready(instance: Instance, seconds: float = 40.0) -> None:
    await wait_until_answers(instance.url + "/readyz", instance.check_alive, seconds)


def _spawn(label: str, port: int, env: dict[str, str], log_path: Path) -> Instance:
    """``portico serve --port <port>``, its output (JSON log lines) to ``log_path``."""
    with log_path.open("wb") as log:
        spawned = spawn_serve(env, port, log)
    return Instance(label, f"http://{HOST}:{port}", log_path, spawned)


async def _stop(instance: Instance) -> None:
    await asyncio.to_thread(stop, instance.process, 40)


@asynccontextmanager
async def running_cluster(
    var_dir: Path, *, redis_url: str = "", redis_prefix: str = ""
) -> AsyncIterator[Cluster]:
    """Create and seed a database, start both instances; afterwards stop them, check their logs
    (JSON lines, no passcode or session token) and drop the database."""
    name = f"portico_scale_{os.getpid()}_{secrets.token_hex(3)}"
    await _admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    database_url = _with_database(POSTGRES_URL, name)

    inbox = Inbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(inbox, hostname="mail.test"), HOST, 0)
    smtp_port = smtp.sockets[0].getsockname()[1]

    ports = [free_port(), free_port()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_DATABASE_URL": database_url,
            "PORTICO_SECRET_KEY": secrets.token_urlsafe(36),  # the same on every instance
            "PORTICO_BASE_URL": f"http://{HOST}:{ports[0]}",  # the public origin
            "PORTICO_SMTP_HOST": HOST,
            "PORTICO_SMTP_PORT": str(smtp_port),
            "PORTICO_MAIL_FROM": "Acme Cloud <billing@acme.test>",
            "PORTICO_VAR_DIR": str(var_dir),
            "PORTICO_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if redis_url:
        env["PORTICO_REDIS_URL"] = redis_url
        env["PORTICO_REDIS_PREFIX"] = redis_prefix
    instances: list[Instance] = []
    database: asyncpg.Connection | None = None
    try:
        login_path = await seed_demo(env)
        for label, port in zip("ab", ports, strict=True):
            instances.append(_spawn(label, port, env, var_dir / f"instance-{label}.log"))
        for instance in instances:
            await _wait_ready(instance)
        database = await asyncpg.connect(database_url)
        async with httpx.AsyncClient(timeout=20) as client:
            cluster = Cluster(
                redis=bool(redis_url),
                a=instances[0],
                b=instances[1],
                login_path=login_path,
                database_url=database_url,
                inbox=inbox,
                database=database,
                client=client,
                redis_url=redis_url,
                redis_prefix=redis_prefix,
            )
            yield cluster
        for instance in instances:
            await _stop(instance)
        for instance in instances:
            text = instance.log_text()
            for secret in cluster.tokens_seen:
                assert secret not in text, f"a secret reached instance {instance.name}'s log"
            for line in text.splitlines():
                if line.startswith("{"):
                    json.loads(line)
    finally:
        for instance in instances:
            await _stop(instance)
        if database is not None:
            await database.close()
        smtp.close()
        await smtp.wait_closed()
        await _admin(POSTGRES_URL, f'DROP DATABASE "{name}" WITH (FORCE)')
