"""Per-client request throttles (per IP address). Per-account limits live in the database, where
every instance sees them; these only blunt floods from one address.

``MemoryThrottle`` counts in this process (one instance); a shared implementation (Redis) can
replace it behind the same ``hit`` call.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol


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
