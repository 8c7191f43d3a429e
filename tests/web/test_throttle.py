"""Per-address throttles: the in-memory counter, and the 429 page it leads to."""

from __future__ import annotations

import pytest

from app.login.controller import REQUESTS_PER_MINUTE, VERIFICATIONS_PER_MINUTE
from app.web import throttle as throttle_module
from app.web.throttle import MemoryThrottle
from tests.helpers import HX


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle_module.time, "monotonic", clock)
    return clock


async def test_the_limit_and_the_window(monotonic):
    throttle = MemoryThrottle()
    assert [await throttle.hit("a", 3, 60) for _ in range(4)] == [True, True, True, False]
    assert await throttle.hit("b", 3, 60)  # per key
    monotonic.now += 59
    assert not await throttle.hit("a", 3, 60)
    monotonic.now += 1.5
    assert await throttle.hit("a", 3, 60)  # the first events left the window


async def test_old_keys_are_pruned(monotonic, monkeypatch):
    monkeypatch.setattr(MemoryThrottle, "MAX_KEYS", 3)
    throttle = MemoryThrottle()
    for key in "abc":
        await throttle.hit(key, 5, 60)
    monotonic.now += 61
    await throttle.hit("d", 5, 60)
    assert set(throttle._events) == {"d"}


def test_the_limits_are_generous():
    assert REQUESTS_PER_MINUTE == 30
    assert VERIFICATIONS_PER_MINUTE == 60


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
async def test_too_many_requests_from_one_address(portal, htmx):
    token = await portal.csrf()
    headers = HX if htmx else {}
    for _ in range(REQUESTS_PER_MINUTE):
        response = await portal.client.post(
            portal.login_path, data={"email": "x", "_csrf_token": token}, headers=headers
        )
        assert response.status_code == 422
    response = await portal.client.post(
        portal.login_path, data={"email": "x", "_csrf_token": token}, headers=headers
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert "Too many requests" in response.text
    assert "<html" in response.text
    # Resending counts in the same bucket; verifying has its own.
    response = await portal.client.post(
        f"{portal.login_path}/code/x/resend", data={"_csrf_token": token}
    )
    assert response.status_code == 429
    response = await portal.client.post(
        f"{portal.login_path}/code/x", data={"_csrf_token": token, "code": "123456"}
    )
    assert response.status_code == 404  # throttle passed; no such attempt
