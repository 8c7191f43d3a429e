"""The optional Redis (``PORTICO_REDIS_URL``) behind the per-address throttles and the session
cache.

Redis is a fast layer shared by every instance, never the source of truth: the database keeps the
sessions and the per-email limits. Whatever Redis answers can be lost at any time (a restart
empties it) without losing anything but speed, and when it cannot be reached each caller falls
back (throttles to the in-process counter, sessions to the database).

``RedisStore`` owns the client and a small circuit breaker: after a failure Redis is left alone
for ``RETRY_AFTER`` seconds, so a dead or hanging server costs one short timeout per period rather
than one per request. Failures are logged as a warning at most once a minute, with the error's
type only: the URL may hold a password, and nothing a caller stores is worth logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("portico.redis")

# What a failed Redis call can raise (redis-py wraps socket errors, but not every path does).
ERRORS = (RedisError, OSError, asyncio.TimeoutError)

DEFAULT_PREFIX = "portico:"


class RedisStore:
    RETRY_AFTER = 5.0  # seconds without trying Redis after a failure
    WARN_EVERY = 60.0  # at most one warning per this many seconds
    TIMEOUT = 0.5  # seconds for connecting and for each reply (Redis answers in well under 1 ms)

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.client: aioredis.Redis = aioredis.from_url(
            url,
            # No retries: a failure falls back at once and the breaker keeps requests fast.
            retry=Retry(NoBackoff(), 0),
            socket_timeout=self.TIMEOUT,
            socket_connect_timeout=self.TIMEOUT,
            health_check_interval=30,
        )
        self.prefix = prefix
        self._down_until = 0.0
        self._warned_at = -math.inf
        self._down = False

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def available(self) -> bool:
        """False while the breaker is open (a call failed less than ``RETRY_AFTER`` s ago)."""
        return time.monotonic() >= self._down_until

    def failed(self, purpose: str, error: BaseException) -> None:
        """Record a failed call: open the breaker and warn (rate-limited, no details)."""
        now = time.monotonic()
        self._down_until = now + self.RETRY_AFTER
        self._down = True
        if now - self._warned_at >= self.WARN_EVERY:
            self._warned_at = now
            log.warning(
                "Redis is unavailable (%s); %s. Retrying in %.0f s.",
                type(error).__name__,
                purpose,
                self.RETRY_AFTER,
            )

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            self._warned_at = -math.inf
            log.info("Redis is reachable again.")

    async def ping(self) -> bool:
        try:
            await self.client.ping()
        except ERRORS as error:
            self.failed("it was not reachable at startup", error)
            return False
        self.succeeded()
        return True

    async def aclose(self) -> None:
        with contextlib.suppress(*ERRORS):  # closing a connection that already broke
            await self.client.aclose()
