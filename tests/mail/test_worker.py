"""The outbox delivery worker: claims, leases, backoff, giving up, the background task."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import timedelta

from app.login import passcodes
from app.mail import service as mail
from app.mail import worker as worker_module
from app.mail.tables import OutboxMessage
from app.mail.worker import LEASE, MAX_ATTEMPTS, backoff
from tests.helpers import JENNY, configuration_of, make_worker, queue_mail, smtp_for


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _one(message_id: int | None = None) -> dict:
    query = OutboxMessage.select()
    if message_id is not None:
        query = query.where(OutboxMessage.id == message_id)
    row = await query.first()
    assert row is not None
    return row


async def _passcode(settings, shop) -> str:
    configuration = await configuration_of(shop)
    return (await passcodes.request_code(settings, configuration, JENNY)).attempt_id


async def _plain(settings, count: int) -> list[int]:
    return await queue_mail(settings, count, "missing-template")


def test_backoff_doubles_and_is_capped():
    assert [backoff(n).total_seconds() for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 320, 600]
    assert backoff(0) == timedelta(seconds=5)
    assert backoff(30) == timedelta(minutes=10)


async def test_the_secret_is_erased_once_sent(db, shop, settings, smtp_server):
    await _passcode(settings, shop)
    assert (await _one())["sealed"]
    worker = make_worker(settings, smtp_for(settings, smtp_server.host, smtp_server.port))
    await worker.deliver_due()
    row = await _one()
    assert row["status"] == "sent"
    assert row["sealed"] is None
    assert row["last_error"] is None


async def test_an_expired_message_is_dropped_unsent(db, shop, settings, smtp_server, fake_clock):
    await _passcode(settings, shop)
    fake_clock.advance(minutes=10)
    worker = make_worker(settings, smtp_for(settings, smtp_server.host, smtp_server.port))
    assert await worker.deliver_due() == 1
    row = await _one()
    assert row["status"] == "expired"
    assert row["sealed"] is None
    assert smtp_server.inbox.messages == []


async def test_a_refused_connection_is_retried_with_backoff_until_the_code_expires(
    db, shop, settings, fake_clock
):
    start = fake_clock()
    await _passcode(settings, shop)
    worker = make_worker(settings, smtp_for(settings, "127.0.0.1", _closed_port()))

    assert await worker.deliver_due() == 1
    row = await _one()
    assert row["status"] == "queued"
    assert row["attempts"] == 1
    assert row["last_error"]
    assert "connect" in row["last_error"].lower()
    assert row["next_attempt_at"] == start + backoff(1)
    assert row["sealed"]  # kept for the next try
    assert await worker.deliver_due() == 0  # not due yet

    expires_at = row["expires_at"]
    while row["status"] == "queued":
        fake_clock.set(row["next_attempt_at"])
        assert await worker.deliver_due() == 1
        previous, row = row, await _one()
        assert row["attempts"] == previous["attempts"] + 1
        if row["status"] == "queued":
            assert row["next_attempt_at"] == fake_clock() + backoff(row["attempts"])
            assert row["next_attempt_at"] < expires_at
    # Given up once the next try would have come after the code's expiry.
    assert row["status"] == "failed"
    assert fake_clock() + backoff(row["attempts"]) >= expires_at
    assert row["attempts"] == 7
    assert row["last_error"]
    assert row["sealed"] is None
    assert row["sent_at"] is None


async def test_a_message_without_expiry_gives_up_after_max_attempts(db, settings, fake_clock):
    [message_id] = await _plain(settings, 1)
    worker = make_worker(settings, smtp_for(settings, "127.0.0.1", _closed_port()))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert await worker.deliver_due() == 1
        row = await _one(message_id)
        assert row["attempts"] == attempt
        assert "missing-template" in row["last_error"]  # the reason is kept
        fake_clock.set(row["next_attempt_at"])
    assert row["status"] == "failed"


async def test_a_claim_is_a_lease(db, shop, settings, smtp_server, fake_clock):
    await _passcode(settings, shop)
    config = smtp_for(settings, smtp_server.host, smtp_server.port)
    dead = make_worker(settings, config)
    claimed = await dead.claim()
    assert len(claimed) == 1
    row = await _one()
    assert row["status"] == "sending"
    assert row["next_attempt_at"] == fake_clock() + LEASE
    # The worker dies here. While the lease runs, nobody else takes the message...
    alive = make_worker(settings, config)
    fake_clock.advance(seconds=LEASE.total_seconds() - 1)
    assert await alive.deliver_due() == 0
    # ...and once it has run out, another worker delivers it.
    fake_clock.advance(seconds=1)
    assert await alive.deliver_due() == 1
    row = await _one()
    assert row["status"] == "sent"
    assert row["attempts"] == 2
    await smtp_server.inbox.wait_for(1)
    assert len(smtp_server.inbox.messages) == 1


async def test_concurrent_workers_never_claim_the_same_message(db, settings):
    ids = await _plain(settings, 40)
    workers = [make_worker(settings, smtp_for(settings, "127.0.0.1", 1)) for _ in range(4)]
    claimed: list[int] = []
    for _ in range(3):
        batches = await asyncio.gather(*(w.claim(limit=7) for w in workers for _ in range(2)))
        claimed += [message.id for batch in batches for message in batch]
    assert len(claimed) == len(set(claimed)), "a message was claimed twice"
    assert set(claimed) == set(ids)
    rows = await OutboxMessage.select(OutboxMessage.status, OutboxMessage.attempts)
    assert {(row["status"], row["attempts"]) for row in rows} == {("sending", 1)}
    assert await workers[0].claim() == []


async def test_the_background_task_delivers_when_notified(
    db, shop, settings, smtp_server, monkeypatch
):
    monkeypatch.setattr(worker_module, "POLL_SECONDS", 60.0)  # so only notify() can wake it
    worker = make_worker(settings, smtp_for(settings, smtp_server.host, smtp_server.port))
    looked = asyncio.Event()
    real_deliver_due = worker.deliver_due

    async def deliver_due() -> int:
        delivered = await real_deliver_due()
        looked.set()
        return delivered

    monkeypatch.setattr(worker, "deliver_due", deliver_due)
    worker.start()
    try:
        await looked.wait()  # it has looked once, found nothing, and waits
        await _passcode(settings, shop)  # notifies the worker
        await smtp_server.inbox.wait_for(1, seconds=5)
    finally:
        await worker.stop()  # right after the message arrived: the worker finishes its bookkeeping
    assert worker._task is not None
    assert worker._task.done()
    assert (await _one())["status"] == "sent"
    assert mail._wakeup is None
    mail.notify()  # harmless with no worker attached


async def test_a_notify_during_a_pass_is_not_lost(db, shop, settings, smtp_server, monkeypatch):
    monkeypatch.setattr(worker_module, "POLL_SECONDS", 60.0)
    worker = make_worker(settings, smtp_for(settings, smtp_server.host, smtp_server.port))
    real_deliver_due = worker.deliver_due
    passes = 0

    async def deliver_due() -> int:
        nonlocal passes
        passes += 1
        delivered = await real_deliver_due()
        if passes == 1:  # mail is queued (and notify() called) just after this pass looked
            await _passcode(settings, shop)
        return delivered

    monkeypatch.setattr(worker, "deliver_due", deliver_due)
    worker.start()
    try:
        await smtp_server.inbox.wait_for(1, seconds=5)
    finally:
        await worker.stop()
    assert passes >= 2


async def test_stop_cancels_a_delivery_that_hangs(db, shop, settings, monkeypatch):
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()  # accepts the connection, never greets
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(worker_module, "STOP_SECONDS", 0.2)
    config = smtp_for(settings, "127.0.0.1", port)
    worker = make_worker(settings, type(config)(**{**_fields(config), "timeout": 30.0}))
    sending = asyncio.Event()
    real_send = worker_module.send

    async def send(config, message) -> None:
        sending.set()
        await real_send(config, message)

    monkeypatch.setattr(worker_module, "send", send)
    try:
        await _passcode(settings, shop)
        worker.start()
        async with asyncio.timeout(5):
            await sending.wait()
        started = time.monotonic()
        await worker.stop()
        assert time.monotonic() - started < 3
        assert worker._task is not None
        assert worker._task.done()
        # The message keeps its lease and is delivered after it, by this or another worker.
        assert (await _one())["status"] == "sending"
    finally:
        release.set()
        server.close()
        await server.wait_closed()


def _fields(struct) -> dict:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


async def test_the_background_task_survives_a_failing_batch(db, settings, monkeypatch, caplog):
    worker = make_worker(settings, smtp_for(settings, "127.0.0.1", 1))
    calls = 0
    failed_thrice = asyncio.Event()

    async def broken() -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            failed_thrice.set()
        raise RuntimeError("database went away")

    monkeypatch.setattr(worker, "deliver_due", broken)
    monkeypatch.setattr(worker_module, "POLL_SECONDS", 0.01)
    worker.start()
    try:
        async with asyncio.timeout(5):
            await failed_thrice.wait()
    finally:
        await worker.stop()
    assert any("mail worker batch failed" in r.getMessage() for r in caplog.records)
