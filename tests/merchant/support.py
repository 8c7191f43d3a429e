"""Merchant test helpers: an account, and a client on the whole app that can sign in.

Like the other page tests, these run the real app (``create_app``, startup and shutdown) through
``tests.helpers.open_portal`` (httpx on ``ASGITransport``, in the test's event loop) rather than
``litestar.testing.AsyncTestClient``, whose separate loop breaks PostgreSQL reads between requests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser

import httpx
import pytest

from app.audit.tables import AuditEvent
from app.billing.demo import DemoSummary
from app.merchant import accounts
from app.merchant.tables import MerchantAccount
from app.settings import Settings
from tests.helpers import HX, Portal, open_portal

EMAIL = "owner@acme.example"
PASSWORD = "correct horse battery staple"
COOKIE = "portico_merchant"
_HX_CSRF = re.compile(r'"x-csrftoken": "([^"]+)"')


@pytest.fixture
async def account(db) -> MerchantAccount:
    return await accounts.create(EMAIL, PASSWORD)


class Merchant:
    """A browser on the app: the portal helpers plus the merchant's steps."""

    def __init__(self, portal: Portal, summary: DemoSummary) -> None:
        self.portal = portal
        self.client: httpx.AsyncClient = portal.client
        self.summary = summary
        self.configuration_id = summary.configuration_id

    def url(self, page: str) -> str:
        return f"/merchant/configurations/{self.configuration_id}/{page}"

    async def csrf(self) -> str:
        """The CSRF token from any page (every page carries it in ``hx-headers``)."""
        for url in ("/merchant/sign-in", self.url("profile"), self.summary.login_path):
            response = await self.client.get(url)
            found = _HX_CSRF.search(response.text) if response.status_code == 200 else None
            if found:
                return found.group(1)
        raise AssertionError("no page with a CSRF token")

    async def post(
        self,
        url: str,
        data: dict[str, str] | None = None,
        *,
        htmx: bool = False,
        files: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        token = await self.csrf()
        return await self.client.post(
            url,
            data={**(data or {}), "_csrf_token": token},
            files=files,
            headers={**(HX if htmx else {}), **(headers or {})},
        )

    async def sign_in(
        self,
        email: str = EMAIL,
        password: str = PASSWORD,
        *,
        next_url: str | None = None,
        htmx: bool = False,
    ) -> httpx.Response:
        data = {"email": email, "password": password}
        if next_url is not None:
            data["next"] = next_url
        return await self.post("/merchant/sign-in", data, htmx=htmx)

    def session_cookie(self) -> str | None:
        return self.client.cookies.get(COOKIE)


@pytest.fixture
async def merchant(
    settings: Settings, demo: DemoSummary, account: MerchantAccount
) -> AsyncIterator[Merchant]:
    """The demo merchant's app with a client that is not signed in yet.

    The app's lifespan must start and end in one task (anyio cancel scopes), and pytest-asyncio
    sets a fixture up and tears it down in different tasks: a helper task holds it open."""
    opened: asyncio.Future[Merchant] = asyncio.get_running_loop().create_future()
    finished = asyncio.Event()

    async def hold() -> None:
        try:
            async with open_merchant(settings, demo) as client:
                opened.set_result(client)
                await finished.wait()
        except BaseException as error:
            if not opened.done():
                opened.set_exception(error)
            raise

    task = asyncio.create_task(hold())
    try:
        yield await opened
    finally:
        finished.set()
        await task


@asynccontextmanager
async def open_merchant(settings: Settings, summary: DemoSummary) -> AsyncIterator[Merchant]:
    async with open_portal(settings, summary) as portal:
        yield Merchant(portal, summary)


async def signed_in(merchant: Merchant) -> Merchant:
    response = await merchant.sign_in()
    assert response.status_code == 303, response.text
    return merchant


async def events(action: str) -> list[dict]:
    return (
        await AuditEvent.select()
        .where(AuditEvent.action == action)
        .order_by(AuditEvent.id)
        .output(load_json=True)
    )


class Elements(HTMLParser):
    """Start tags with their attributes, to look for what escaping should have prevented."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def with_attribute(self, attribute: str) -> list[str]:
        return [name for name, attrs in self.tags if attribute in attrs]
