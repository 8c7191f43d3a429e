"""Per-client request throttles (per IP address). Per-account limits live in the database, where
every instance sees them; these only blunt floods from one address.

``MemoryThrottle`` counts in this process (one instance). ``RedisThrottle`` (with
``PORTICO_REDIS_URL``) counts in Redis, so every instance and worker process shares one count per
address; when Redis cannot be reached it counts in this process instead.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from typing import Protocol

from app.web.redis_store import ERRORS, RedisStore


class Throttle(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> bool:
        """Count one event for ``key``; False when more than ``limit`` fell in ``window`` s."""
        ...


class MemoryThrottle:
    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._events: dict[str, deque[float]] = {}

    async def hit(self, key: str, limit: int, window: float) -> bool:
        now = time.monotonic()
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self.MAX_KEYS:
                self._prune(now, window)
            events = self._events[key] = deque()
        while events and events[0] <= now - window:
            events.popleft()
        if len(events) >= limit:
            return False
        events.append(now)
        return True

    def _prune(self, now: float, window: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - window]:
            del self._events[key]


# A sliding window in one sorted set per key: members are events, scores their time in
# microseconds on Redis's own clock (so instances whose clocks disagree still share one window).
# Trimming, counting and adding happen in one script, so concurrent hits from several instances
# cannot overshoot the limit. A refused hit is not counted (as in MemoryThrottle), and the key
# expires one window after its last event.
SLIDING_WINDOW = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local allowed = 0
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return allowed
"""


class RedisThrottle:
    """Shared per-address counts in Redis (keys ``<prefix>throttle:<key>``), falling back to a
    ``MemoryThrottle`` of this process while Redis is unavailable."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.fallback = MemoryThrottle()
        self._script = store.client.register_script(SLIDING_WINDOW)

    async def hit(self, key: str, limit: int, window: float) -> bool:
        if self.store.available:
            try:
                allowed = await self._script(
                    keys=[self.store.key("throttle", key)],
                    args=[int(window * 1_000_000), limit, secrets.token_hex(8)],
                )
            except ERRORS as error:
                self.store.failed("per-address limits count in this process", error)
            else:
                self.store.succeeded()
                return bool(allowed)
        return await self.fallback.hit(key, limit, window)
