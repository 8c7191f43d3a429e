"""A server process killed (SIGKILL) in the middle of a request, then started again: no
half-applied change, no lost email.

The request is a passcode request: in one transaction it supersedes older codes, records the
login attempt and queues the email in the outbox. To kill the process at a known point instead
of a random one, PostgreSQL is reached through a relay (``proxy.py``) that stops that transaction
at its COMMIT: either before the server receives it (the process dies with every write done but
none committed) or after the server committed but before the process hears back. A third test
kills the process while its mail worker is in the middle of an SMTP conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.faults.live import (
    CSRF_RE,
    Server,
    arrival,
    code_in,
    csrf,
    request_code,
    sign_in,
)
from tests.faults.postgres import PrivatePostgres
from tests.faults.proxy import PostgresProxy
from tests.fixtures.smtp import Inbox

JENNY = "jenny.rosen@example.com"


@pytest.fixture
async def proxy(private_postgres: PrivatePostgres) -> AsyncIterator[PostgresProxy]:
    relay = PostgresProxy(private_postgres.port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


async def rows(server: Server, sql: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(server.database_url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


async def attempts_and_mail(server: Server) -> tuple[int, list[asyncpg.Record]]:
    [attempts] = await rows(
        server, "SELECT count(*) AS n FROM login_attempt WHERE email = $1", JENNY
    )
    outbox = await rows(
        server,
        "SELECT id, status, attempts, sealed, next_attempt_at, created_at FROM mail_outbox "
        "WHERE to_address = $1",
        JENNY,
    )
    return attempts["n"], outbox


async def kill_during(server: Server, proxy: PostgresProxy, mode: str) -> None:
    """Send the passcode request; kill the server once the proxy holds its COMMIT."""
    proxy.arm(mode)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        token = await csrf(client, server.login_path)
        request = asyncio.ensure_future(
            client.post(server.login_path, data={"email": JENNY, "_csrf_token": token})
        )
        async with asyncio.timeout(15):
            await proxy.held.wait()
        assert not request.done()  # in flight
        server.kill()
        with pytest.raises(httpx.TransportError):
            await request  # the browser sees the connection drop: no answer at all
    await proxy.cut()  # the dead process's connections close: PostgreSQL rolls back what was open
    proxy.reset()


async def signs_in(server: Server, inbox: Inbox, count: int) -> None:
    """The newest emailed code signs Jenny in (the attempt it belongs to is whole)."""
    await arrival(inbox, JENNY, count)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        [row] = await rows(
            server,
            "SELECT id FROM login_attempt WHERE email = $1 ORDER BY created_at DESC LIMIT 1",
            JENNY,
        )
        code_path = f"{server.login_path}/code/{row['id']}"
        token = await csrf(client, code_path)
        response = await client.post(
            code_path, data={"code": code_in(inbox, JENNY), "_csrf_token": token}
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/portal"


async def test_killed_before_its_commit_nothing_is_applied(
    make_server, proxy: PostgresProxy, smtp_server
) -> None:
    server = await make_server(smtp_server.port, database_port=proxy.port)
    await kill_during(server, proxy, "before-commit")

    assert await attempts_and_mail(server) == (0, [])  # no attempt, no queued email: all or nothing

    await server.start()  # the same database, a new process
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        response = await request_code(client, server.login_path, JENNY)
    assert response.status_code == 303
    assert "notice=cooldown" not in response.headers["location"]  # no ghost of the first try
    await signs_in(server, smtp_server.inbox, 1)
    attempts, outbox = await attempts_and_mail(server)
    assert attempts == 1
    assert [r["status"] for r in outbox] == ["sent"]
    assert len(smtp_server.inbox.to(JENNY)) == 1


async def test_killed_after_its_commit_the_queued_email_is_still_sent(
    make_server, proxy: PostgresProxy, smtp_server
) -> None:
    server = await make_server(smtp_server.port, database_port=proxy.port)
    await kill_during(server, proxy, "after-commit")

    attempts, outbox = await attempts_and_mail(server)
    assert attempts == 1  # the whole change, though the process never heard it committed
    assert [r["status"] for r in outbox] == ["queued"]
    assert outbox[0]["sealed"]
    assert smtp_server.inbox.to(JENNY) == []

    await server.start()  # its mail worker finds the queued email
    await signs_in(server, smtp_server.inbox, 1)
    _, outbox = await attempts_and_mail(server)
    assert [r["status"] for r in outbox] == ["sent"]
    assert len(smtp_server.inbox.to(JENNY)) == 1  # delivered once


@contextlib.asynccontextmanager
async def silent_then_healthy(port: int, inbox: Inbox):
    """An SMTP address that first accepts connections and never answers (an SMTP conversation in
    progress, as far as the client knows); ``healthy()`` puts a real SMTP server there."""
    from aiosmtpd.smtp import SMTP

    connected = asyncio.Event()
    released = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await released.wait()
        writer.close()

    servers = [await asyncio.start_server(hold, "127.0.0.1", port, reuse_address=True)]

    async def healthy() -> None:
        servers[0].close()
        await servers[0].wait_closed()
        released.set()
        loop = asyncio.get_running_loop()
        servers[0] = await loop.create_server(
            lambda: SMTP(inbox, hostname="mail.test"), "127.0.0.1", port, reuse_address=True
        )

    try:
        yield connected, healthy
    finally:
        released.set()
        servers[0].close()
        await servers[0].wait_closed()


async def test_killed_while_sending_the_email_is_sent_after_the_lease(make_server) -> None:
    from tests.portico_process import free_port

    inbox = Inbox()
    port = free_port()
    async with silent_then_healthy(port, inbox) as (connected, healthy):
        server = await make_server(port)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            response = await request_code(client, server.login_path, JENNY)
        assert response.status_code == 303
        async with asyncio.timeout(10):
            await connected.wait()  # the worker claimed the email and is talking to the server
        server.kill()

        _, [row] = await attempts_and_mail(server)
        assert row["status"] == "sending"  # claimed: a lease, not a loss
        assert row["attempts"] == 1
        assert row["sealed"]  # the code is kept until it is delivered
        lease = (row["next_attempt_at"] - row["created_at"]).total_seconds()
        assert 55 <= lease <= 65  # the 60 s lease from the claim

        await healthy()
        await server.start()
        # The lease runs out after 60 s; rather than wait, the test moves its end to now.
        await rows(
            server, "UPDATE mail_outbox SET next_attempt_at = now() WHERE id = $1", row["id"]
        )
        await signs_in(server, inbox, 1)
        _, [row] = await attempts_and_mail(server)
        assert row["status"] == "sent"
        assert row["attempts"] == 2
        assert len(inbox.to(JENNY)) == 1


# --- a portal action (sandbox billing): cancel at period end ------------------------------------

CANCEL_RE = re.compile(r'href="(/portal/subscriptions/([A-Za-z0-9_]+)/cancel)"')  # the list's link
INTENT_RE = re.compile(r'name="intent" value="([^"]+)"')


async def cancel_state(server: Server, sub_id: str) -> tuple[bool, int, int]:
    """(cancel_at_period_end in the mirror, idempotency records, audit events) for ``sub_id``."""
    [sub] = await rows(
        server, "SELECT cancel_at_period_end FROM billing_subscription WHERE id = $1", sub_id
    )
    [records] = await rows(server, "SELECT count(*) AS n FROM billing_idempotency")
    [events] = await rows(
        server,
        "SELECT count(*) AS n FROM audit_event WHERE action = 'subscription.canceled' "
        "AND object_id = $1",
        sub_id,
    )
    return sub["cancel_at_period_end"], records["n"], events["n"]


@pytest.mark.parametrize("mode", ["before-commit", "after-commit"])
async def test_killed_while_cancelling_then_the_same_form_again(
    make_server, private_postgres: PrivatePostgres, smtp_server, mode: str
) -> None:
    proxy = PostgresProxy(private_postgres.port, watch=b"billing_idempotency")
    await proxy.start()
    try:
        server = await make_server(smtp_server.port, database_port=proxy.port)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as jenny:
            await sign_in(jenny, server.login_path, JENNY, smtp_server.inbox)
            listing = await jenny.get("/portal/subscriptions")
            cancel_url, sub_id = CANCEL_RE.findall(listing.text)[0]
            before = await cancel_state(server, sub_id)
            assert before[0] is False
            token = CSRF_RE.search(listing.text).group(1)
            review = await jenny.post(f"{cancel_url}/review", data={"_csrf_token": token})
            assert review.status_code == 200, review.text
            intent = INTENT_RE.findall(review.text)[-1]
            form = {"intent": intent, "_csrf_token": token}

            proxy.arm(mode)
            request = asyncio.ensure_future(jenny.post(cancel_url, data=form))
            async with asyncio.timeout(15):
                await proxy.held.wait()
            assert not request.done()
            server.kill()
            with pytest.raises(httpx.TransportError):
                await request
            await proxy.cut()
            proxy.reset()

            after_kill = await cancel_state(server, sub_id)
            if mode == "before-commit":
                assert after_kill == before  # nothing of the cancellation
            else:
                # The cancellation and its idempotency record, whole. The audit event is written
                # after the billing change, in its own transaction (as in Stripe mode, where
                # billing is remote), so the process died before writing it.
                assert after_kill == (True, before[1] + 1, before[2])

            await server.start()
            again = await jenny.post(cancel_url, data=form)  # the same form, submitted again
            # Done now (before-commit), or a replay whose missing audit event the retry writes
            # (after-commit: the key's idempotency record says billing already changed). Either
            # way the success answer, billing changed once and one event.
            assert again.status_code == 303, again.text
            assert again.headers["location"] == "/portal/subscriptions"
            page = await jenny.get("/portal/subscriptions")
            assert "Your subscription was canceled. You have access until" in page.text
            [event] = await rows(
                server,
                "SELECT before, after FROM audit_event WHERE action = 'subscription.canceled' "
                "AND object_id = $1",
                sub_id,
            )
        assert await cancel_state(server, sub_id) == (True, before[1] + 1, before[2] + 1)
        recovered = json.loads(event["after"]).get("recovered", False)
        assert recovered is (mode == "after-commit")
    finally:
        await proxy.close()
