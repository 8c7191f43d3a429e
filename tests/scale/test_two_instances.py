"""Scale-out acceptance: two real ``portico serve`` processes on different ports share one fresh
PostgreSQL database (and, in the ``redis`` run, one Redis), with a real SMTP server (aiosmtpd)
in the test's event loop and both mail workers running.

One browser (one cookie jar: cookies ignore ports, as they would behind a load balancer that
sends each request to either instance) is driven with httpx, CSRF token and cookie included:

- a passcode requested on the first instance is accepted on the second;
- the per-email limits (resend cooldown, sends per hour) hold across both instances;
- signing out on one ends the session on the other (the old cookie gets the signed-out page);
- every outbox message is delivered exactly once with two workers claiming;
- neither instance logs a passcode or a session token.

Runs only with PostgreSQL (``PORTICO_TEST_POSTGRES_URL``, as CI sets); the ``redis`` run needs
Redis (``tests/fixtures/redis.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from aiosmtpd.smtp import SMTP

from tests.conftest import POSTGRES_URL, _admin, _with_database
from tests.fixtures.redis import (
    REDIS_REQUIRED,
    REDIS_URL,
    delete_prefix,
    new_prefix,
    redis_reachable,
)
from tests.fixtures.smtp import Inbox, body_text
from tests.helpers import JENNY, LEE, PAT, csrf_token

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CODE_LINE = re.compile(r"#(\d{6})\s*$", re.MULTILINE)

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs PostgreSQL (set PORTICO_TEST_POSTGRES_URL)"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def portico_command() -> str:
    candidate = Path(sys.executable).parent / "portico"
    return str(candidate if candidate.exists() else PROJECT_ROOT / ".venv" / "bin" / "portico")


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
    redis_prefix: str
    tokens_seen: list[str] = field(default_factory=list)  # codes and cookies: never in a log

    async def redis_keys(self) -> list[str]:
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        try:
            return [
                key.decode()
                async for key in client.scan_iter(match=self.redis_prefix + "*", count=500)
            ]
        finally:
            await client.aclose()

    async def redis_get(self, key: str) -> bytes | None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
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
    async with httpx.AsyncClient() as client, asyncio.timeout(seconds):
        while True:
            instance.check_alive()
            try:
                response = await client.get(instance.url + "/readyz", timeout=2)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


def _spawn(label: str, port: int, env: dict[str, str], log_path: Path) -> Instance:
    """``portico serve --port <port>``, its output (JSON log lines) to ``log_path``."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [portico_command(), "serve", "--host", HOST, "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Instance(label, f"http://{HOST}:{port}", log_path, process)


async def _stop(instance: Instance) -> None:
    if instance.process.poll() is None:
        instance.process.terminate()
        try:
            await asyncio.to_thread(instance.process.wait, 40)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            await asyncio.to_thread(instance.process.wait, 10)


async def _seed(env: dict[str, str]) -> str:
    """``portico demo --seed-only`` (migrations and the demo merchant); the login path."""
    process = await asyncio.create_subprocess_exec(
        portico_command(),
        "demo",
        "--seed-only",
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    text = output.decode(errors="replace")
    found = re.search(r"^Login link: (\S+)$", text, re.MULTILINE)
    assert process.returncode == 0, text
    assert found, text
    return urlsplit(found.group(1)).path


@pytest.fixture(scope="module", params=["postgres", "postgres+redis"])
async def cluster(request, tmp_path_factory) -> AsyncIterator[Cluster]:
    with_redis = request.param.endswith("redis")
    if with_redis and not redis_reachable():
        if REDIS_REQUIRED:
            pytest.fail(f"PORTICO_TEST_REDIS_URL is set but Redis does not answer at {REDIS_URL}")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    var_dir = Path(tmp_path_factory.mktemp("scale"))
    name = f"portico_scale_{os.getpid()}_{secrets.token_hex(3)}"
    await _admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    database_url = _with_database(POSTGRES_URL, name)
    prefix = new_prefix()

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
    if with_redis:
        env["PORTICO_REDIS_URL"] = REDIS_URL
        env["PORTICO_REDIS_PREFIX"] = prefix
    instances: list[Instance] = []
    database: asyncpg.Connection | None = None
    try:
        login_path = await _seed(env)
        for label, port in zip("ab", ports, strict=True):
            instances.append(_spawn(label, port, env, var_dir / f"instance-{label}.log"))
        for instance in instances:
            await _wait_ready(instance)
        database = await asyncpg.connect(database_url)
        async with httpx.AsyncClient(timeout=20) as client:
            cluster = Cluster(
                redis=with_redis,
                a=instances[0],
                b=instances[1],
                login_path=login_path,
                database_url=database_url,
                inbox=inbox,
                database=database,
                client=client,
                redis_prefix=prefix,
            )
            yield cluster
        for instance in instances:
            await _stop(instance)
        # Logs: JSON lines, never a passcode or a session token; Redis never reported down.
        for instance in instances:
            text = instance.log_text()
            for secret in cluster.tokens_seen:
                assert secret not in text, f"a secret reached instance {instance.name}'s log"
            assert "Redis is unavailable" not in text
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
        if with_redis:
            await delete_prefix(REDIS_URL, prefix)


async def test_a_passcode_requested_on_one_is_accepted_on_the_other_and_sign_out_ends_it_on_both(
    cluster: Cluster,
):
    a, b = cluster.a, cluster.b
    before = len(cluster.inbox.to(JENNY))
    requested = await cluster.request_code(a, JENNY)
    assert notice_of(requested) == "sent"
    code = await cluster.code_for(JENNY, before + 1)

    # The browser lands on the code page of the other instance and submits the code there.
    code_page = attempt_path(requested)
    signed_in = await cluster.post(b, code_page, {"code": code}, token_from=code_page)
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/portal"
    session = cluster.client.cookies.get("portico_session")
    assert session
    cluster.tokens_seen.append(session)

    # Signed in on both (and, with Redis, now cached by both).
    for instance in (a, b, a, b):
        page = await cluster.page(instance, "/portal")
        assert page.status_code == 200, (instance.name, page.status_code)
        assert "Jenny Rosen" in page.text

    # The code was used: a second use fails on either instance.
    again = await cluster.post(a, code_page, {"code": code}, token_from=code_page)
    assert again.status_code == 422

    # Sign out on B; the browser forgets the cookie...
    signed_out = await cluster.post(b, "/portal/sign-out", {}, token_from="/portal")
    assert signed_out.status_code == 303
    assert "reason=signed_out" in signed_out.headers["location"]
    assert not cluster.client.cookies.get("portico_session")
    # ...and the old cookie, replayed on A (which had just served it), gets the signed-out answer.
    async with httpx.AsyncClient(headers={"Cookie": f"portico_session={session}"}) as stolen:
        for instance in (a, b):
            response = await stolen.get(instance.url + "/portal")
            assert response.status_code == 401, (instance.name, response.status_code)
            assert "You are signed out" in response.text
    rows = await cluster.database.fetchval("SELECT count(*) FROM web_session")
    assert rows == 0
    if cluster.redis:  # the cached copy both instances read was replaced by the 'ended' marker
        digest = hashlib.sha256(session.encode()).hexdigest()
        assert await cluster.redis_get(f"session:{digest}") == b"ended"


async def test_the_per_email_limits_hold_across_both_instances(cluster: Cluster):
    a, b = cluster.a, cluster.b
    email = PAT
    backdate = (
        "UPDATE login_attempt SET created_at = created_at - interval '61 seconds' WHERE email = $1"
    )
    notices: list[tuple[str, str]] = []

    async def request(instance: Instance) -> None:
        before = len(cluster.inbox.to(email))
        notice = notice_of(await cluster.request_code(instance, email))
        notices.append((instance.name, notice))
        if notice == "sent":
            # As a person would, wait for the email before asking again (a code superseded
            # before its turn in the outbox is not sent at all).
            await mail_to(cluster.inbox, email, before + 1)

    # Resend cooldown: a request on A, then at once on B.
    await request(a)
    await request(b)
    assert notices == [("a", "sent"), ("b", "cooldown")]

    # Sends per hour: past each cooldown (moved back in the database), alternate instances.
    for instance in (b, a, b, a):
        await cluster.database.execute(backdate, email)
        await request(instance)
    await cluster.database.execute(backdate, email)
    await request(b)
    await request(a)
    assert notices == [
        ("a", "sent"),
        ("b", "cooldown"),
        ("b", "sent"),
        ("a", "sent"),
        ("b", "sent"),
        ("a", "sent"),
        ("b", "hourly_limit"),
        ("a", "hourly_limit"),
    ]
    sent = await cluster.database.fetchval(
        "SELECT count(*) FROM login_attempt WHERE email = $1", email
    )
    assert sent == 5
    # Exactly five emails reached the mailbox: the limit is the total over both instances.
    await asyncio.sleep(2.5)  # a worker's poll interval: nothing more arrives
    assert len(cluster.inbox.to(email)) == 5
    for message in cluster.inbox.to(email):
        found = CODE_LINE.search(body_text(message))
        assert found
        cluster.tokens_seen.append(found.group(1))


async def test_simultaneous_requests_on_both_instances_send_one_code(cluster: Cluster):
    """Ten requests for one email at the same moment, half on each instance: the cooldown is
    checked and the attempt written under one lock per email, so exactly one code is sent."""
    email = LEE
    pages = {
        instance.name: await cluster.page(instance, cluster.login_path)
        for instance in (cluster.a, cluster.b)
    }
    tokens = {name: csrf_token(page.text) for name, page in pages.items()}
    responses = await asyncio.gather(
        *(
            cluster.client.post(
                instance.url + cluster.login_path,
                data={"email": email, "_csrf_token": tokens[instance.name]},
            )
            for instance in [cluster.a, cluster.b] * 5
        )
    )
    assert all(response.status_code == 303 for response in responses)
    assert sorted(notice_of(response) for response in responses) == ["cooldown"] * 9 + ["sent"]
    rows = await cluster.database.fetch("SELECT status FROM login_attempt WHERE email = $1", email)
    assert [row["status"] for row in rows] == ["live"]
    await mail_to(cluster.inbox, email, 1)
    found = CODE_LINE.search(body_text(cluster.inbox.to(email)[0]))
    assert found
    cluster.tokens_seen.append(found.group(1))


async def test_the_outbox_is_delivered_once_by_two_workers(cluster: Cluster):
    batch = secrets.token_hex(4)
    count = 60
    await cluster.database.executemany(
        """
        INSERT INTO mail_outbox (kind, to_address, subject, template, context, status, attempts,
                                 next_attempt_at, created_at, reference)
        VALUES ('test', $1, $2, 'test', $3::json, 'queued', 0, now(), now(), $4)
        """,
        [
            (
                f"delivery-{i}@example.com",
                f"Delivery {batch} #{i}",
                json.dumps({"sent_by": "the scale test", "requested_at": "now"}),
                f"scale-{batch}",
            )
            for i in range(count)
        ],
    )
    async with asyncio.timeout(60):
        while True:
            waiting = await cluster.database.fetchval(
                "SELECT count(*) FROM mail_outbox WHERE reference = $1 AND status <> 'sent'",
                f"scale-{batch}",
            )
            if waiting == 0:
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)  # a worker's poll interval: no second copy arrives
    subjects = [str(m["Subject"]) for m in cluster.inbox.messages if batch in str(m["Subject"])]
    assert len(subjects) == count
    assert sorted(subjects) == sorted(f"Delivery {batch} #{i}" for i in range(count))
    attempts = await cluster.database.fetch(
        "SELECT attempts FROM mail_outbox WHERE reference = $1", f"scale-{batch}"
    )
    assert {row["attempts"] for row in attempts} == {1}  # each claimed once, by one worker


async def test_redis_holds_the_throttle_and_sessions_only_when_configured(cluster: Cluster):
    keys = await cluster.redis_keys()
    if not cluster.redis:
        assert keys == []  # without PORTICO_REDIS_URL nothing goes to Redis
        return
    assert any(key.startswith(cluster.redis_prefix + "throttle:login:") for key in keys), keys
    assert any(key.startswith(cluster.redis_prefix + "session:") for key in keys), keys
