"""The Redis session cache in front of the sessions table: reads come from Redis, every change
invalidates it on every instance, the database stays the source of truth, and a Redis that is
down (or emptied) changes nothing but speed.

"Instances" here are two ``SessionCache`` objects with their own Redis connections and one key
prefix, switched in with ``sessions.use_cache`` as each app does at startup.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from app.login import sessions
from app.login.tables import WebSession
from app.web.redis_store import RedisStore
from tests.conftest import TEST_SECRET

POLICY = sessions.CUSTOMER


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Instances:
    def __init__(self, first: sessions.SessionCache, second: sessions.SessionCache) -> None:
        self.first = first
        self.second = second

    def on(self, cache: sessions.SessionCache) -> sessions.SessionCache:
        sessions.use_cache(cache)
        return cache

    async def raw(self, token: str) -> bytes | None:
        return await self.first.store.client.get(self.first.store.key("session", _digest(token)))


@pytest.fixture
async def instances(db, redis_url, redis_prefix) -> AsyncIterator[Instances]:
    stores = [RedisStore(redis_url, redis_prefix), RedisStore(redis_url, redis_prefix)]
    previous = sessions.current_cache()
    try:
        yield Instances(
            sessions.SessionCache(stores[0], TEST_SECRET),
            sessions.SessionCache(stores[1], TEST_SECRET),
        )
    finally:
        sessions.use_cache(previous)
        for store in stores:
            await store.aclose()


async def _start(subject: str = "cus_jenny", **kwargs) -> str:
    return await sessions.start(POLICY, subject, configuration="bpc_1", **kwargs)


async def test_resume_fills_the_cache_and_then_reads_it_first(instances):
    instances.on(instances.first)
    token = await _start()
    assert await instances.raw(token) is None
    found = await sessions.resume(POLICY, token)
    assert isinstance(found, sessions.Active)
    cached = await instances.raw(token)
    assert cached is not None
    assert token.encode() not in cached  # only the digest names it
    ttl = await instances.first.store.client.ttl(
        instances.first.store.key("session", _digest(token))
    )
    assert 0 < ttl <= sessions.SessionCache.TTL
    # Proof that the next read is Redis's: a change made behind the app's back is not seen...
    await WebSession.update({WebSession.subject: "cus_other"}).where(
        WebSession.id == _digest(token)
    )
    instances.on(instances.second)
    again = await sessions.resume(POLICY, token)
    assert isinstance(again, sessions.Active)
    assert again.subject == "cus_jenny"
    assert again.id == found.id
    assert again.configuration == "bpc_1"


async def test_sign_out_on_one_instance_ends_the_session_on_the_other(instances):
    instances.on(instances.first)
    token = await _start()
    other = await _start("cus_pat")
    instances.on(instances.second)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)  # cached on B
    assert isinstance(await sessions.resume(POLICY, other), sessions.Active)
    instances.on(instances.first)
    await sessions.end(token)
    assert await instances.raw(token) == sessions.ENDED
    instances.on(instances.second)
    assert await sessions.resume(POLICY, token) is None
    assert isinstance(await sessions.resume(POLICY, other), sessions.Active)


async def test_end_all_ends_every_session_of_the_subject_everywhere(instances):
    instances.on(instances.first)
    tokens = [await _start() for _ in range(3)]
    kept = await _start("cus_pat")
    instances.on(instances.second)
    for token in [*tokens, kept]:
        assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    instances.on(instances.first)
    await sessions.end_all(POLICY, "cus_jenny")
    instances.on(instances.second)
    for token in tokens:
        assert await sessions.resume(POLICY, token) is None
    assert isinstance(await sessions.resume(POLICY, kept), sessions.Active)


async def test_a_new_session_ends_the_one_it_replaces_everywhere(instances):
    instances.on(instances.second)
    old = await _start("cus_pat")
    assert isinstance(await sessions.resume(POLICY, old), sessions.Active)
    instances.on(instances.first)
    new = await _start(replacing=old)
    instances.on(instances.second)
    assert await sessions.resume(POLICY, old) is None
    assert isinstance(await sessions.resume(POLICY, new), sessions.Active)


async def test_flash_messages_are_seen_by_the_other_instance(instances):
    instances.on(instances.first)
    token = await _start()
    session = await sessions.resume(POLICY, token)
    assert isinstance(session, sessions.Active)
    instances.on(instances.second)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)  # cached
    instances.on(instances.first)
    await sessions.push_flash(session, "Your card was saved.")
    instances.on(instances.second)
    on_b = await sessions.resume(POLICY, token)
    assert isinstance(on_b, sessions.Active)
    assert await sessions.pop_flash(on_b) == [
        {"message": "Your card was saved.", "level": "success"}
    ]
    instances.on(instances.first)
    on_a = await sessions.resume(POLICY, token)
    assert isinstance(on_a, sessions.Active)
    assert await sessions.pop_flash(on_a) == []  # shown once


async def test_the_refresh_and_the_idle_timeout_go_through_the_database(instances, fake_clock):
    instances.on(instances.first)
    token = await _start()
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    assert await instances.raw(token) is not None
    fake_clock.advance(seconds=35)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    row = await WebSession.select().where(WebSession.id == _digest(token)).first()
    assert row is not None
    assert row["last_seen_at"] == fake_clock()  # refreshed in the database...
    assert await instances.raw(token) is None  # ...and the stale copy dropped
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)  # refilled
    assert await instances.raw(token) is not None
    fake_clock.advance(minutes=30)
    assert await sessions.resume(POLICY, token) == sessions.Expired("bpc_1")
    assert await WebSession.count() == 0
    assert await instances.raw(token) == sessions.ENDED
    instances.on(instances.second)
    assert await sessions.resume(POLICY, token) is None


async def test_the_absolute_timeout_holds_with_the_cache(instances, fake_clock):
    instances.on(instances.first)
    start = fake_clock()
    token = await _start()
    # Ten seconds before the end, used a moment ago: the cached copy may live ten seconds only.
    fake_clock.set(start + POLICY.absolute - timedelta(seconds=10))
    await WebSession.update({WebSession.last_seen_at: fake_clock()}).where(
        WebSession.id == _digest(token)
    )
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    ttl = await instances.first.store.client.ttl(
        instances.first.store.key("session", _digest(token))
    )
    assert 0 < ttl <= 10
    fake_clock.set(start + POLICY.absolute)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Expired)


async def test_a_slow_reader_cannot_put_back_what_a_writer_invalidated(instances):
    """Reader on A: looks Redis up (miss), reads the row; meanwhile B changes or ends the session;
    A's late fill must not store what it read."""
    instances.on(instances.first)
    token = await _start()
    digest = _digest(token)
    session = await sessions.resume(POLICY, token)
    assert isinstance(session, sessions.Active)
    await instances.first.store.client.delete(instances.first.store.key("session", digest))

    entry, generation = await instances.first.lookup(digest)
    assert entry is None
    assert generation is not None
    row = await WebSession.select().where(WebSession.id == digest).output(load_json=True).first()
    instances.on(instances.second)
    await sessions.push_flash(session, "changed meanwhile")
    await instances.first.fill(digest, generation, row, POLICY)
    assert await instances.raw(token) is None  # the stale copy was refused

    entry, generation = await instances.first.lookup(digest)
    await sessions.end(token)
    await instances.first.fill(digest, generation, row, POLICY)
    assert await instances.raw(token) == sessions.ENDED


async def test_a_customer_session_is_not_a_merchants_from_the_cache_either(instances):
    instances.on(instances.first)
    token = await _start()
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)  # cached
    other = sessions.Policy("merchant", "portico_admin", POLICY.idle, POLICY.absolute)
    assert await sessions.resume(other, token) is None


async def test_an_emptied_redis_loses_nothing(instances, redis_url, redis_prefix):
    from tests.fixtures.redis import delete_prefix

    instances.on(instances.first)
    token = await _start()
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    await delete_prefix(redis_url, redis_prefix)  # as a Redis restart would
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    await sessions.end(token)
    await delete_prefix(redis_url, redis_prefix)
    assert await sessions.resume(POLICY, token) is None  # the database says so


async def test_redis_down_falls_back_to_the_database(db, down_redis_url, caplog):
    caplog.set_level(logging.INFO, logger="portico")
    store = RedisStore(down_redis_url)
    previous = sessions.use_cache(sessions.SessionCache(store, TEST_SECRET))
    try:
        token = await _start()
        found = await sessions.resume(POLICY, token)
        assert isinstance(found, sessions.Active)
        await sessions.push_flash(found, "hello")
        again = await sessions.resume(POLICY, token)
        assert isinstance(again, sessions.Active)
        assert await sessions.pop_flash(again) == [{"message": "hello", "level": "success"}]
        await sessions.end(token)
        assert await sessions.resume(POLICY, token) is None
        assert await WebSession.count() == 0
        warnings = [r for r in caplog.records if r.name == "portico.redis"]
        assert len(warnings) == 1  # rate-limited
        assert "never-log-this-secret" not in caplog.text
        assert token not in caplog.text
    finally:
        sessions.use_cache(previous)
        await store.aclose()


async def test_invalidations_missed_while_redis_was_away_are_sent_when_it_returns(instances):
    instances.on(instances.first)
    token = await _start()
    instances.on(instances.second)
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)  # cached by B
    # A loses Redis (its breaker is open) and signs the session out: the database forgets it,
    # but B's cached copy cannot be told yet.
    instances.first.store.failed("testing", ConnectionError("away"))
    instances.on(instances.first)
    await sessions.end(token)
    assert await sessions.resume(POLICY, token) is None  # A reads the database meanwhile
    assert instances.first._pending
    # Redis is back for A: its next use sends what it missed, and B's copy is gone.
    instances.first.store._down_until = 0.0
    await sessions.resume(POLICY, "another-token")
    assert not instances.first._pending
    assert await instances.raw(token) == sessions.ENDED
    instances.on(instances.second)
    assert await sessions.resume(POLICY, token) is None


async def test_missed_invalidations_older_than_the_ttl_are_dropped(instances, monkeypatch):
    instances.on(instances.first)
    token = await _start()
    instances.first.store.failed("testing", ConnectionError("away"))
    await sessions.end(token)
    assert instances.first._pending
    monkeypatch.setattr(sessions.SessionCache, "TTL", -1)  # any missed one is now too old
    instances.first.store._down_until = 0.0
    await sessions.resume(POLICY, "another-token")
    assert not instances.first._pending
    assert await instances.raw(token) is None  # nothing to remove: no copy can outlive the TTL


async def test_a_session_planted_in_redis_is_not_believed(instances, caplog):
    """Whoever can write to Redis still cannot sign in: entries are signed with the secret key."""
    instances.on(instances.first)
    token = await _start()
    assert isinstance(await sessions.resume(POLICY, token), sessions.Active)
    genuine = await instances.raw(token)
    assert genuine is not None
    store = instances.first.store
    # A made-up token with a copied (or forged) entry naming someone else.
    planted = "attacker-chosen-token"
    forged = genuine.replace(b"cus_jenny", b"cus_pat___")
    for key_token, value in ((planted, genuine), (token, forged)):
        await store.client.set(store.key("session", _digest(key_token)), value, ex=60)
    assert await sessions.resume(POLICY, planted) is None  # no such row in the database
    found = await sessions.resume(POLICY, token)
    assert isinstance(found, sessions.Active)
    assert found.subject == "cus_jenny"  # the database's answer, not the forged entry's
    assert "failed its signature check" in caplog.text
    # Another deployment's key does not verify either.
    other = sessions.SessionCache(store, "another-secret-key-" + "y" * 32)
    entry, _generation = await other.lookup(_digest(token))
    assert entry is None
