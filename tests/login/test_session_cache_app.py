"""The whole app with ``PORTICO_REDIS_URL``: sessions go through Redis when it answers, and
through the database alone when it does not (no 500, one warning, no secrets in the log)."""

from __future__ import annotations

import hashlib
import logging

import msgspec

from app.login import sessions
from app.login.tables import WebSession
from app.web.throttle import RedisThrottle
from tests.helpers import JENNY, open_portal


async def test_sign_in_pages_and_sign_out_through_redis(settings, shop, redis_url, redis_prefix):
    settings = msgspec.structs.replace(settings, redis_url=redis_url, redis_prefix=redis_prefix)
    async with open_portal(settings, shop) as portal:
        assert isinstance(sessions.current_cache(), sessions.SessionCache)
        redis = portal.app.state.redis
        cookie = await portal.sign_in(JENNY)
        key = redis.key("session", hashlib.sha256(cookie.encode()).hexdigest())
        assert (await portal.client.get("/portal")).status_code == 200
        assert await redis.client.exists(key) == 1  # filled by the first page
        assert (await portal.client.get("/portal/invoices")).status_code == 200
        response = await portal.post("/portal/sign-out")
        assert response.status_code == 303
        assert await redis.client.get(key) == sessions.ENDED
        old = await portal.client.get("/portal", headers={"Cookie": f"portico_session={cookie}"})
        assert old.status_code == 401
    assert sessions.current_cache() is None  # unbound at shutdown


async def test_redis_down_sessions_come_from_the_database(settings, shop, down_redis_url, caplog):
    caplog.set_level(logging.INFO, logger="portico")
    settings = msgspec.structs.replace(settings, redis_url=down_redis_url)
    async with open_portal(settings, shop) as portal:
        assert isinstance(portal.app.state.throttle, RedisThrottle)
        cookie = await portal.sign_in(JENNY)
        for path in ("/portal", "/portal/invoices", "/portal"):
            assert (await portal.client.get(path)).status_code == 200, path
        response = await portal.post("/portal/sign-out")
        assert response.status_code == 303
        assert await WebSession.count() == 0
        old = await portal.client.get("/portal", headers={"Cookie": f"portico_session={cookie}"})
        assert old.status_code == 401
    warnings = [r for r in caplog.records if r.name == "portico.redis"]
    assert warnings
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert len(warnings) <= 2  # rate-limited: not one per request
    assert "never-log-this-secret" not in caplog.text
    assert cookie not in caplog.text
