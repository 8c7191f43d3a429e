"""Fault injection: make matching requests fail, slow down, or both.

``inject_fault("/v1/customers*", status=500, times=1)`` answers the next matching request
with Stripe's ``api_error`` body; ``status=429`` answers a ``rate_limit`` error with
``Stripe-Should-Retry: true`` (the ``stripe`` SDK retries on that header);
``delay_seconds=5`` holds the request that long before handling it normally (or before
failing it, when ``status`` is also given) - longer than the client's timeout, the client
sees a timeout while the server still processes the request, as can happen with Stripe.
Patterns are shell-style globs on the path (``fnmatch``) or compiled regular expressions.
Injected responses are logged but never stored as idempotent results, so the SDK's retry
with the same ``Idempotency-Key`` executes for real.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import StripeError

DEFAULT_MESSAGES = {
    429: (
        "invalid_request_error",
        "rate_limit",
        "Too many requests hit the API too quickly. We recommend an exponential backoff of "
        "your requests.",
    ),
    500: ("api_error", None, "An unknown error occurred (injected by the test server)."),
    503: ("api_error", None, "The service is temporarily unavailable (injected)."),
    409: ("invalid_request_error", "lock_timeout", "This object cannot be accessed right now."),
}


@dataclass
class Fault:
    pattern: str | re.Pattern[str]
    status: int | None = None
    delay_seconds: float = 0.0
    times: int | None = 1
    method: str | None = None
    should_retry: bool | None = None
    message: str | None = None
    code: str | None = None
    hits: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if isinstance(self.pattern, re.Pattern):
            return bool(self.pattern.search(path))
        return fnmatch.fnmatchcase(path, self.pattern)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def error(self) -> StripeError:
        assert self.status is not None
        error_type, code, message = DEFAULT_MESSAGES.get(
            self.status,
            (
                "api_error" if self.status >= 500 else "invalid_request_error",
                None,
                f"Injected HTTP {self.status}.",
            ),
        )
        headers: dict[str, str] = {}
        should_retry = self.should_retry
        if should_retry is None and self.status == 429:
            should_retry = True
        if should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
        return StripeError(
            self.status,
            self.message or message,
            type=error_type,
            code=self.code or code,
            headers=headers,
        )


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first live fault matching the request, with its hit counted."""
        with self._lock:
            for fault in self.faults:
                if not fault.exhausted and fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [vars(f).copy() for f in self.faults]
