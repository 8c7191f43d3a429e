"""The shared per-address throttle in Redis: same rules as the in-memory one, one count for every
instance, atomic under concurrency, namespaced expiring keys, and the fall-back to this process's
count when Redis is down (no 500, one warning, no secrets)."""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
import pytest

from app.login.controller import REQUESTS_PER_MINUTE
from app.web.redis_store import RedisStore
from app.web.throttle import MemoryThrottle, RedisThrottle
from tests.helpers import JENNY, open_portal


async def test_the_limit_and_the_window(redis_store):
    throttle = RedisThrottle(redis_store)
    assert [await throttle.hit("a", 3, 1.0) for _ in range(4)] == [True, True, True, False]
    assert await throttle.hit("b", 3, 1.0)  # per key
    await asyncio.sleep(1.1)
    assert await throttle.hit("a", 3, 1.0)  # the first events left the window


async def test_the_window_slides(redis_store):
    throttle = RedisThrottle(redis_store)
    assert await throttle.hit("a", 2, 1.5)
    await asyncio.sleep(0.8)
    assert await throttle.hit("a", 2, 1.5)
    assert not await throttle.hit("a", 2, 1.5)
    await asyncio.sleep(0.9)  # the first event left the window, the second did not
    assert await throttle.hit("a", 2, 1.5)
    assert not await throttle.hit("a", 2, 1.5)


async def test_keys_are_namespaced_and_expire(redis_store):
    throttle = RedisThrottle(redis_store)
    for _ in range(5):
        await throttle.hit("login:request:203.0.113.9", 3, 60)
    key = redis_store.prefix + "throttle:login:request:203.0.113.9"
    client = redis_store.client
    assert await client.zcard(key) == 3  # refused hits are not counted
    assert 0 < await client.pttl(key) <= 60_000
    keys = [k async for k in client.scan_iter(match=redis_store.prefix + "*")]
    assert keys == [key.encode()]


async def test_every_instance_shares_one_count(redis_url, redis_prefix):
    first, second = RedisStore(redis_url, redis_prefix), RedisStore(redis_url, redis_prefix)
    try:
        a, b = RedisThrottle(first), RedisThrottle(second)
        results = [await (a if i % 2 else b).hit("ip", 5, 60) for i in range(8)]
        assert results == [True] * 5 + [False] * 3
        # Another deployment (prefix) on the same Redis counts on its own.
        other = RedisStore(redis_url, redis_prefix + "other:")
        try:
            assert await RedisThrottle(other).hit("ip", 5, 60)
        finally:
            await other.aclose()
    finally:
        await first.aclose()
        await second.aclose()


async def test_concurrent_hits_never_overshoot(redis_url, redis_prefix):
    stores = [RedisStore(redis_url, redis_prefix) for _ in range(3)]
    try:
        throttles = [RedisThrottle(store) for store in stores]
        results = await asyncio.gather(*(throttles[i % 3].hit("burst", 20, 60) for i in range(90)))
        assert results.count(True) == 20
    finally:
        for store in stores:
            await store.aclose()


async def test_redis_down_counts_in_this_process(down_redis_url, caplog):
    caplog.set_level(logging.INFO, logger="portico")
    store = RedisStore(down_redis_url)
    try:
        throttle = RedisThrottle(store)
        started = time.monotonic()
        assert [await throttle.hit("a", 3, 60) for _ in range(4)] == [True, True, True, False]
        assert time.monotonic() - started < 1.0
        assert not store.available  # the breaker is open: Redis is not tried on every hit
        warnings = [r for r in caplog.records if r.name == "portico.redis"]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        assert "ConnectionError" in warnings[0].getMessage()
        assert "never-log-this-secret" not in caplog.text
        assert "127.0.0.1" not in warnings[0].getMessage()
    finally:
        await store.aclose()


async def test_back_to_redis_when_it_answers_again(redis_store, caplog):
    caplog.set_level(logging.INFO, logger="portico")
    throttle = RedisThrottle(redis_store)
    redis_store.failed("testing", ConnectionError("boom"))
    assert await throttle.hit("a", 1, 60)  # counted in this process while the breaker is open
    assert await redis_store.client.exists(redis_store.key("throttle", "a")) == 0
    redis_store._down_until = 0.0  # the breaker's time is up
    assert await throttle.hit("a", 1, 60)  # Redis has its own count
    assert not await throttle.hit("a", 1, 60)
    assert await redis_store.client.exists(redis_store.key("throttle", "a")) == 1
    assert "Redis is reachable again." in caplog.text


async def test_two_app_instances_share_the_login_throttle(settings, shop, redis_url, redis_prefix):
    settings = msgspec.structs.replace(settings, redis_url=redis_url, redis_prefix=redis_prefix)
    async with open_portal(settings, shop) as first, open_portal(settings, shop) as second:
        assert isinstance(first.app.state.throttle, RedisThrottle)
        statuses = []
        for i in range(REQUESTS_PER_MINUTE + 2):
            portal = first if i % 2 else second
            # an invalid email: 422, no mail, but the request counts against the address
            response = await portal.post(portal.login_path, {"email": "not-an-email"})
            statuses.append(response.status_code)
        assert statuses == [422] * REQUESTS_PER_MINUTE + [429, 429]


async def test_an_app_with_redis_down_still_serves_and_throttles(settings, shop, down_redis_url):
    settings = msgspec.structs.replace(settings, redis_url=down_redis_url)
    async with open_portal(settings, shop) as portal:
        assert isinstance(portal.app.state.throttle, RedisThrottle)
        response = await portal.request_code(JENNY)
        assert response.status_code == 303
        statuses = [
            (await portal.post(portal.login_path, {"email": "x"})).status_code
            for _ in range(REQUESTS_PER_MINUTE)
        ]
        assert statuses == [422] * (REQUESTS_PER_MINUTE - 1) + [429]


def test_the_in_memory_throttle_is_the_default(settings):
    from app.factory import create_app

    app = create_app(settings)
    assert isinstance(app.state.throttle, MemoryThrottle)
    assert app.state.redis is None


@pytest.mark.parametrize("limit", [1, 2])
async def test_a_refused_hit_does_not_extend_the_wait(redis_store, limit):
    throttle = RedisThrottle(redis_store)
    for _ in range(limit):
        assert await throttle.hit("k", limit, 0.6)
    for _ in range(5):
        assert not await throttle.hit("k", limit, 0.6)
    await asyncio.sleep(0.7)
    assert await throttle.hit("k", limit, 0.6)
