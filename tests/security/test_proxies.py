"""The client address behind reverse proxies: ``X-Forwarded-For`` counts only when the socket peer
is one of ``PORTICO_TRUSTED_PROXIES``.

The app runs here exactly as ``portico serve`` wraps it: ``uvicorn.Config(**uvicorn_options(…))``
and ``config.load()`` (uvicorn's ``ProxyHeadersMiddleware`` with ``forwarded_allow_ips``), driven
in-process through httpx with a chosen socket peer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from app import db as database
from app.cli import uvicorn_options
from app.factory import create_app
from app.login.controller import REQUESTS_PER_MINUTE
from app.login.tables import LoginAttempt
from app.settings import Settings, SettingsError
from app.web.security import client_ip
from tests.helpers import BASE_URL, JENNY, _run_hooks, csrf_token

PROXY = "10.1.2.3"
CLIENT = "198.51.100.7"
OTHER_CLIENT = "198.51.100.8"
STRANGER = "203.0.113.9"


def _with(settings: Settings, **changes) -> Settings:
    fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
    return Settings(**{**fields, **changes})


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[uvicorn.Config]:
    """The app as ``portico serve`` hands it to uvicorn, started (logging left alone)."""
    previous = database.current()
    app = create_app(settings)
    options = {**uvicorn_options(settings, "127.0.0.1", 8000, 1), "log_config": None}
    config = uvicorn.Config(app, **options)
    config.load()
    await _run_hooks(app, app.on_startup)
    try:
        yield config
    finally:
        await _run_hooks(app, reversed(app.on_shutdown))
        database.bind(previous)


@asynccontextmanager
async def browser(config: uvicorn.Config, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def _request_code(client, login_path: str, email: str, forwarded: str | None) -> int:
    page = await client.get(login_path)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = await client.post(
        login_path, data={"email": email, "_csrf_token": csrf_token(page.text)}, headers=headers
    )
    return response.status_code


async def _recorded_ip() -> str:
    row = (
        await LoginAttempt.select(LoginAttempt.ip)
        .order_by(LoginAttempt.created_at, ascending=False)
        .first()
    )
    return row["ip"]


@pytest.mark.parametrize("value", ["*", "10.0.0.0/33", "proxy.internal", "10.0.0.1;10.0.0.2"])
def test_a_bad_proxy_list_stops_with_one_line(value):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"PORTICO_TRUSTED_PROXIES": value})
    assert str(raised.value).startswith("PORTICO_TRUSTED_PROXIES: ")


def test_serve_trusts_only_the_configured_proxies(settings):
    options = uvicorn_options(settings, "0.0.0.0", 8000, 1)  # noqa: S104
    assert options["proxy_headers"] is False  # none configured: the socket peer, always
    assert options["timeout_graceful_shutdown"] == 30
    assert options["server_header"] is False
    trusted = _with(settings, trusted_proxies=" 10.0.0.0/8, 192.0.2.10 ,::1")
    options = uvicorn_options(trusted, "0.0.0.0", 8000, 4)  # noqa: S104
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == "10.0.0.0/8,192.0.2.10/32,::1/128"
    assert options["workers"] == 4


async def test_a_trusted_proxy_sets_the_client_address(db, shop, settings, fake_clock):
    trusted = _with(settings, trusted_proxies="10.0.0.0/8")
    async with served(trusted) as config:
        throttle = config.app.state.throttle
        async with browser(config, PROXY) as client:
            # The proxy appends the address it saw; anything to its left came from the client.
            for forwarded in (CLIENT, f"6.6.6.6, {CLIENT}", f"{CLIENT}, 10.9.9.9"):
                fake_clock.advance(seconds=61)
                assert await _request_code(client, shop.login_path, JENNY, forwarded) == 303
                assert await _recorded_ip() == CLIENT, forwarded
            assert f"login:request:{CLIENT}" in throttle._events
            assert f"login:request:{PROXY}" not in throttle._events

            # Each client behind the proxy has its own per-address limit.
            page = await client.get(shop.login_path)
            token = csrf_token(page.text)
            for _ in range(REQUESTS_PER_MINUTE):
                await client.post(
                    shop.login_path,
                    data={"email": "x", "_csrf_token": token},
                    headers={"X-Forwarded-For": CLIENT},
                )
            limited = await client.post(
                shop.login_path,
                data={"email": "x", "_csrf_token": token},
                headers={"X-Forwarded-For": CLIENT},
            )
            assert limited.status_code == 429
            other = await client.post(
                shop.login_path,
                data={"email": "x", "_csrf_token": token},
                headers={"X-Forwarded-For": OTHER_CLIENT},
            )
            assert other.status_code == 422  # not throttled: another client

        # A peer that is not a trusted proxy cannot choose its address.
        async with browser(config, STRANGER) as client:
            fake_clock.advance(seconds=61)
            assert await _request_code(client, shop.login_path, JENNY, OTHER_CLIENT) == 303
            assert await _recorded_ip() == STRANGER
            assert f"login:request:{STRANGER}" in throttle._events


async def test_without_trusted_proxies_the_header_is_ignored(db, shop, settings):
    async with served(settings) as config:
        async with browser(config, "127.0.0.1") as client:
            assert await _request_code(client, shop.login_path, JENNY, CLIENT) == 303
        assert await _recorded_ip() == "127.0.0.1"
        assert set(config.app.state.throttle._events) == {"login:request:127.0.0.1"}


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("/run/portico.sock", "/run/portico.sock"),
        ("x" * 100, "x" * 64),
        ("", ""),
    ],
)
def test_client_addresses_are_canonical(peer, expected):
    assert client_ip({"client": (peer, 1)}) == expected  # type: ignore[typeddict-item]
