"""Server-side customer sessions: tokens, lifetimes, revocation, flash messages."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from app.login import sessions
from app.login.tables import WebSession
from app.settings import Settings

POLICY = sessions.CUSTOMER


async def _start(subject: str = "cus_jenny", **kwargs) -> str:
    return await sessions.start(POLICY, subject, configuration="bpc_1", **kwargs)


async def _row(token: str) -> dict | None:
    return (
        await WebSession.select()
        .where(WebSession.id == hashlib.sha256(token.encode()).hexdigest())
        .first()
    )


def test_the_policy():
    assert POLICY.idle == timedelta(minutes=30)
    assert POLICY.absolute == timedelta(hours=12)
    assert sessions.cookie_name(POLICY, Settings(base_url="http://portal.test")) == (
        "portico_session"
    )
    assert sessions.cookie_name(POLICY, Settings(base_url="https://portal.test")) == (
        "__Host-portico_session"
    )


async def test_tokens_are_long_random_and_stored_only_as_sha256(db):
    tokens = [await _start(ip="198.51.100.7", user_agent="pytest") for _ in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)  # ≥ 256 bits, URL-safe
    rows = await WebSession.select()
    assert len(rows) == 5
    digests = {hashlib.sha256(token.encode()).hexdigest() for token in tokens}
    assert {row["id"] for row in rows} == digests
    for row in rows:
        for value in row.values():
            assert all(token not in str(value) for token in tokens)
    row = await _row(tokens[0])
    assert row is not None
    assert row["kind"] == "customer"
    assert row["subject"] == "cus_jenny"
    assert row["configuration"] == "bpc_1"
    assert row["ip"] == "198.51.100.7"
    assert row["absolute_expires_at"] - row["created_at"] == timedelta(hours=12)


async def test_resume(db):
    token = await _start()
    active = await sessions.resume(POLICY, token)
    assert isinstance(active, sessions.Active)
    assert active.subject == "cus_jenny"
    assert active.configuration == "bpc_1"
    assert await sessions.resume(POLICY, None) is None
    assert await sessions.resume(POLICY, "") is None
    assert await sessions.resume(POLICY, "not-a-session") is None
    assert await sessions.resume(POLICY, "x" * 500) is None
    other = sessions.Policy("merchant", "portico_admin", POLICY.idle, POLICY.absolute)
    assert await sessions.resume(other, token) is None  # a customer session is not a merchant's


async def test_starting_a_session_replaces_the_old_one(db):
    old = await _start("cus_pat")
    new = await _start("cus_jenny", replacing=old)
    assert new != old
    assert await _row(old) is None
    assert await sessions.resume(POLICY, old) is None
    assert isinstance(await sessions.resume(POLICY, new), sessions.Active)
    # Replacing a token that is not (or no longer) a session is harmless.
    await _start(replacing="made-up")
    assert await WebSession.count() == 2


async def test_idle_timeout(db, fake_clock):
    token = await _start()
    fake_clock.advance(minutes=29, seconds=59)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)  # refreshes it
    fake_clock.advance(minutes=29, seconds=59)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    fake_clock.advance(minutes=30)
    expired = await sessions.resume(POLICY, token)
    assert expired == sessions.Expired("bpc_1")
    assert await _row(token) is None
    assert await sessions.resume(POLICY, token) is None


async def test_reading_a_page_refreshes_the_session_at_most_every_30_seconds(db, fake_clock):
    token = await _start()
    started = (await _row(token))["last_seen_at"]  # type: ignore[index]
    fake_clock.advance(seconds=10)
    await sessions.resume(POLICY, token)
    assert (await _row(token))["last_seen_at"] == started  # type: ignore[index]
    fake_clock.advance(seconds=25)
    await sessions.resume(POLICY, token)
    assert (await _row(token))["last_seen_at"] == fake_clock()  # type: ignore[index]


async def test_sessions_falling_due_together_are_recorded_in_a_few_statements(
    db, fake_clock, monkeypatch
):
    import asyncio

    from tests.querycount import counted

    tokens = [await _start(subject=f"cus_{n}") for n in range(40)]
    fake_clock.advance(seconds=31)  # all due for their refresh at once
    with counted(monkeypatch) as seen:
        found = await asyncio.gather(*(sessions.resume(POLICY, token) for token in tokens))
    assert all(isinstance(session, sessions.Active) for session in found)
    for token in tokens:  # every one recorded by the time the requests are done
        assert (await _row(token))["last_seen_at"] == fake_clock()  # type: ignore[index]
    updates = [sql for sql in seen if sql.lstrip().upper().startswith("UPDATE")]
    assert 1 <= len(updates) <= 3, updates  # not one per session


async def test_a_write_left_unfinished_by_another_event_loop_holds_no_touch_back(
    db, fake_clock, monkeypatch
):
    import asyncio
    import threading

    token = await _start()
    stale_loop = asyncio.new_event_loop()
    stale = stale_loop.create_task(asyncio.sleep(3600))  # never runs: a loop gone mid-write
    monkeypatch.setattr(sessions, "_writer", stale)
    fake_clock.advance(seconds=31)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    assert (await _row(token))["last_seen_at"] == fake_clock()  # type: ignore[index]
    stale.cancel()
    finish = threading.Thread(
        target=lambda: stale_loop.run_until_complete(asyncio.gather(stale, return_exceptions=True))
    )
    finish.start()
    finish.join()
    stale_loop.close()


async def test_absolute_timeout(db, fake_clock):
    start = fake_clock()
    token = await _start()
    # Busy all day: used every 25 minutes, never idle...
    while fake_clock() + timedelta(minutes=25) < start + timedelta(hours=12):
        fake_clock.advance(minutes=25)
        assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    # ...and still over after 12 hours.
    fake_clock.set(start + timedelta(hours=12))
    assert isinstance(await sessions.resume(POLICY, token), sessions.Expired)
    assert await _row(token) is None


async def test_end_revokes(db):
    token = await _start()
    other = await _start("cus_pat")
    await sessions.end(token)
    assert await sessions.resume(POLICY, token) is None
    assert isinstance(await sessions.resume(POLICY, other), sessions.Active)
    await sessions.end(None)  # signed-out already: nothing to do
    await sessions.end_all(POLICY, "cus_pat")
    assert await WebSession.count() == 0


async def test_flash_messages(db):
    token = await _start()
    session = await sessions.resume(POLICY, token)
    assert isinstance(session, sessions.Active)
    await sessions.push_flash(session, "Your card was saved.")
    await sessions.push_flash(session, "Check your address.", "warning")

    again = await sessions.resume(POLICY, token)
    assert isinstance(again, sessions.Active)
    assert await sessions.pop_flash(again) == [
        {"message": "Your card was saved.", "level": "success"},
        {"message": "Check your address.", "level": "warning"},
    ]
    assert await sessions.pop_flash(again) == []
    later = await sessions.resume(POLICY, token)
    assert isinstance(later, sessions.Active)
    assert await sessions.pop_flash(later) == []
