"""SMTP refusing connections, hanging, and answering very slowly, with the real app (its own
delivery worker running in the background) and real SMTP servers started late.

In every case the sign-in answer is the one a healthy server gets (the passcode is queued, never
awaited in the request); the worker gives up on the sick server quickly (refused at once, a
silent server after ``smtp_timeout``, a slow one at the conversation's deadline), retries with
backoff inside the passcode's lifetime, and delivers once a healthy server answers: the code in
that email signs the customer in.

The clock is the tests' fake clock (the backoff is 5 s, 10 s, …): the test moves it to the next
attempt and wakes the worker instead of waiting.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import msgspec
import pytest
from aiosmtpd.smtp import SMTP

from app.mail import service as mail
from app.mail.tables import OutboxMessage
from app.mail.transport import MAX_DEADLINE, SmtpConfig
from app.mail.worker import LEASE, backoff
from app.settings import Settings
from tests.fixtures.smtp import Inbox, body_text
from tests.helpers import (
    JENNY,
    FakeClock,
    Portal,
    make_worker,
    open_portal,
    queue_mail,
    smtp_for,
)

TIMEOUT = 0.5  # smtp_timeout (per step); the whole conversation's deadline is 3 times that
PATIENCE = 10.0  # seconds the test waits for the worker to act (it normally takes milliseconds)


def reserved_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def healthy_smtp(port: int = 0) -> AsyncIterator[tuple[Inbox, int]]:
    """aiosmtpd on 127.0.0.1 (on ``port`` when given: a server started late on the address
    Portico is already configured with)."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="mail.test"), "127.0.0.1", port, reuse_address=True
    )
    try:
        yield inbox, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def with_smtp(settings: Settings, port: int) -> Settings:
    return msgspec.structs.replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=TIMEOUT,
        run_mail_worker=True,
    )


async def outbox_row(email: str = JENNY) -> dict:
    row = (
        await OutboxMessage.select()
        .where(OutboxMessage.to_address == email)
        .order_by(OutboxMessage.id, ascending=False)
        .first()
    )
    assert row is not None
    return row


async def until(check: Callable[[dict], bool], seconds: float = PATIENCE) -> dict:
    """The passcode's outbox row, once ``check`` holds for it."""
    async with asyncio.timeout(seconds):
        while True:  # polls the database: the worker runs in this process but says nothing
            row = await outbox_row()
            if check(row):
                return row
            await asyncio.sleep(0.02)


async def next_attempt(portal: Portal, fake_clock: FakeClock, row: dict) -> None:
    """Move the clock to the row's next attempt and wake the worker."""
    assert row["status"] == "queued"
    assert row["next_attempt_at"] < row["expires_at"]  # retried within the code's lifetime
    fake_clock.set(row["next_attempt_at"])
    mail.notify()


def normalised(response, portal: Portal) -> tuple:
    """The sign-in answer without what differs between any two requests (ids and tokens)."""
    text = re.sub(r"/code/[A-Za-z0-9_-]+", "/code/ID", response.text)
    text = re.sub(r'value="[A-Za-z0-9_.-]{20,}"', 'value="TOKEN"', text)
    text = re.sub(r'"x-csrftoken": "[^"]+"', '"x-csrftoken": "TOKEN"', text)
    location = re.sub(r"/code/[A-Za-z0-9_-]+", "/code/ID", response.headers.get("location", ""))
    headers = sorted(
        (k, v)
        for k, v in response.headers.items()
        if k not in ("location", "set-cookie", "x-request-id", "content-length", "date")
    )
    return response.status_code, location, headers, text


async def sign_in_answers(portal: Portal) -> list[tuple]:
    """The answer to the email step, then the code page it leads to."""
    answer = await portal.request_code(JENNY)
    page = await portal.client.get(answer.headers["location"])
    return [normalised(answer, portal), normalised(page, portal)]


async def sign_in_with(portal: Portal, inbox: Inbox) -> None:
    code = re.search(r"#(\d{6})\b", body_text(inbox.to(JENNY)[-1]))
    assert code
    attempt = await portal.latest_attempt(JENNY)
    response = await portal.post(portal.code_url(attempt), {"code": code.group(1)})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal"


@pytest.fixture
async def healthy_answers(db, shop, settings, fake_clock) -> list[tuple]:
    """What sign-in answers with a healthy SMTP server (then the data is reset by ``db``)."""
    async with healthy_smtp() as (inbox, port), open_portal(with_smtp(settings, port), shop) as p:
        answers = await sign_in_answers(p)
        await inbox.wait_for(1)
    await OutboxMessage.delete(force=True)
    fake_clock.advance(minutes=2)  # past the resend cooldown
    return answers


async def test_smtp_refusing_connections(db, shop, settings, fake_clock, healthy_answers) -> None:
    port = reserved_port()  # nothing listens there yet: connections are refused
    async with open_portal(with_smtp(settings, port), shop) as portal:
        assert await sign_in_answers(portal) == healthy_answers

        row = await until(lambda r: r["attempts"] == 1 and r["status"] == "queued")
        assert "connect" in row["last_error"].lower()
        await next_attempt(portal, fake_clock, row)
        row = await until(lambda r: r["attempts"] == 2 and r["status"] == "queued")

        async with healthy_smtp(port) as (inbox, _):  # the server comes back
            await next_attempt(portal, fake_clock, row)
            await inbox.wait_for(1, seconds=PATIENCE)
            row = await until(lambda r: r["status"] == "sent")
        assert row["attempts"] == 3
        assert row["sent_at"] < row["expires_at"]
        assert len(inbox.to(JENNY)) == 1
        await sign_in_with(portal, inbox)


@asynccontextmanager
async def silent_smtp(port: int) -> AsyncIterator[list[asyncio.StreamWriter]]:
    """Accepts connections and never says a word (until the test ends)."""
    held: list[asyncio.StreamWriter] = []
    released = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await released.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", port, reuse_address=True)
    try:
        yield held
        server.close()  # stop listening; the held connections stay open
        await server.wait_closed()
    finally:
        released.set()
        server.close()


async def test_smtp_hanging(db, shop, settings, fake_clock, healthy_answers) -> None:
    port = reserved_port()
    async with open_portal(with_smtp(settings, port), shop) as portal:
        async with silent_smtp(port) as held:
            assert await sign_in_answers(portal) == healthy_answers
            row = await until(lambda r: r["attempts"] == 1 and r["status"] == "queued")
            assert "timed out" in row["last_error"].lower() or "timeout" in row["last_error"]
            assert held  # the connection is still open on the server's side: nobody waits on it
            worker = portal.app.state.worker
            assert worker._task is not None
            assert not worker._task.done()
            # The worker is free: the next attempt is made (and times out again) on time.
            await next_attempt(portal, fake_clock, row)
            row = await until(lambda r: r["attempts"] == 2 and r["status"] == "queued")
            assert len(held) == 2
        async with healthy_smtp(port) as (inbox, _):
            await next_attempt(portal, fake_clock, row)
            await inbox.wait_for(1, seconds=PATIENCE)
            row = await until(lambda r: r["status"] == "sent")
        assert row["sent_at"] < row["expires_at"]
        await sign_in_with(portal, inbox)


class SlowLine:
    """A TCP relay in front of a real SMTP server that holds every reply for ``delay`` seconds
    (each step stays within ``smtp_timeout``; the whole conversation does not)."""

    def __init__(self, target: int, delay: float) -> None:
        self.target = target
        self.delay = delay
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(source, sink, delay: Callable[[], float]) -> None:
            try:
                while data := await source.read(65536):
                    await asyncio.sleep(delay())
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(
            pump(reader, up_writer, lambda: 0.0),
            pump(up_reader, writer, lambda: self.delay),
        )


async def test_smtp_answering_very_slowly(db, shop, settings, fake_clock, healthy_answers) -> None:
    async with healthy_smtp() as (inbox, smtp_port):
        line = SlowLine(smtp_port, delay=0.4)  # < TIMEOUT per reply; RCPT's reply after 1.6 s
        await line.start()
        try:
            async with open_portal(with_smtp(settings, line.port), shop) as portal:
                assert await sign_in_answers(portal) == healthy_answers
                row = await until(lambda r: r["attempts"] == 1 and r["status"] == "queued")
                assert row["last_error"].startswith("TimeoutError")  # the whole-send deadline
                assert inbox.messages == []  # cut before DATA: nothing half-sent
                line.delay = 0.0  # the server is itself again
                await next_attempt(portal, fake_clock, row)
                await inbox.wait_for(1, seconds=PATIENCE)
                row = await until(lambda r: r["status"] == "sent")
                assert row["attempts"] == 2
                await sign_in_with(portal, inbox)
        finally:
            await line.close()


# --- the worker against a sick server, message by message ------------------------------------


async def _queue_tests(settings: Settings, count: int) -> list[int]:
    context = {"sent_by": "x", "requested_at": "now", "base_url": "http://portal.test"}
    return await queue_mail(settings, count, "test", context=context)


async def test_an_unreachable_server_reschedules_the_rest_of_the_batch(
    db, settings, fake_clock
) -> None:
    """Ten queued messages and a silent server: one conversation times out, and the other nine
    are rescheduled with it rather than each waiting for the same timeout."""
    ids = await _queue_tests(settings, 10)
    port = reserved_port()
    async with silent_smtp(port) as held:
        config = msgspec.structs.replace(smtp_for(settings, "127.0.0.1", port), timeout=TIMEOUT)
        worker = make_worker(settings, config)
        assert await worker.deliver_due() == 10
        assert len(held) == 1
    rows = await OutboxMessage.select().where(OutboxMessage.id.is_in(ids))
    assert {r["status"] for r in rows} == {"queued"}
    assert {r["attempts"] for r in rows} == {1}
    assert {r["last_error"] for r in rows} == {rows[0]["last_error"]}
    assert "Timed out" in rows[0]["last_error"]
    assert {r["next_attempt_at"] for r in rows} == {fake_clock() + backoff(1)}


async def test_a_claim_too_close_to_its_lease_end_is_put_back_unsent(
    db, settings, fake_clock, smtp_server
) -> None:
    """A message is only sent while its lease outlasts a whole conversation: after that, another
    worker may already have claimed it, and two workers must never send one message."""
    [message_id] = await _queue_tests(settings, 1)
    worker = make_worker(settings, smtp_for(settings, smtp_server.host, smtp_server.port))
    [message] = await worker.claim()
    fake_clock.set(message.next_attempt_at - timedelta(seconds=1))  # 1 s of lease left
    assert await worker.deliver(message) is None
    row = await OutboxMessage.select().where(OutboxMessage.id == message_id).first()
    assert row["status"] == "queued"
    assert row["attempts"] == 0  # the claim that sent nothing does not count
    assert smtp_server.inbox.messages == []
    assert await worker.deliver_due() == 1  # due at once, and sent by the next pass
    assert len(smtp_server.inbox.messages) == 1


def test_a_whole_conversation_ends_before_the_lease() -> None:
    assert timedelta(seconds=MAX_DEADLINE) < LEASE
    assert SmtpConfig(host="h", port=25, timeout=600).deadline == MAX_DEADLINE
    assert SmtpConfig(host="h", port=25, timeout=2).deadline == 6
