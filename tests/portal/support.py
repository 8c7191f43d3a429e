"""A signed-in portal client and helpers shared by the portal's tests.

Signs in by starting a customer session directly (the login flow has its own tests), reads the
CSRF token from a page's hidden ``_csrf_token`` field, and runs the real app in the test's event
loop (``tests.helpers.open_portal``: on PostgreSQL the tests read the database between requests,
which ``AsyncTestClient``'s separate loop would not allow).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from litestar import Litestar

from app.audit.tables import AuditEvent
from app.billing import demo as demo_data
from app.billing.gateway import GatewayError
from app.billing.tables import Customer
from app.configuration import features as feature_types
from app.configuration.tables import PortalConfiguration
from app.login import sessions
from app.settings import Settings
from tests.helpers import HX, csrf_token, open_portal

INTENT_RE = re.compile(r'name="intent" value="([^"]+)"')


async def customer_by_email(email: str) -> Customer:
    """The newest customer with this email."""
    found = (
        await Customer.objects()
        .where(Customer.email == email)
        .order_by(Customer.created, ascending=False)
        .first()
    )
    assert found is not None, email
    return found


async def features_of(summary: demo_data.DemoSummary) -> feature_types.Features:
    row = (
        await PortalConfiguration.select(PortalConfiguration.features)
        .where(PortalConfiguration.id == summary.configuration_id)
        .first()
    )
    return feature_types.decode(row["features"])


async def set_features(summary: demo_data.DemoSummary, **changes: Any) -> None:
    """Change parts of the demo configuration's features, e.g.
    ``set_features(demo, subscription_pause={"enabled": True})``."""
    raw = msgspec.to_builtins(await features_of(summary))
    for name, values in changes.items():
        raw[name] = {**raw[name], **values}
    features = msgspec.convert(raw, feature_types.Features)
    await PortalConfiguration.update(
        {PortalConfiguration.features: feature_types.encode(features)}
    ).where(PortalConfiguration.id == summary.configuration_id)


async def audit_events(action: str, object_id: str | None = None) -> list[dict[str, Any]]:
    where = AuditEvent.action == action
    if object_id is not None:
        where = where & (AuditEvent.object_id == object_id)
    return await AuditEvent.select().where(where).output(load_json=True)


def intents_on(html: str) -> list[str]:
    return INTENT_RE.findall(html)


def intent_of(html: str, action: str) -> str:
    """The intent of the form that posts to ``action``."""
    found = re.search(
        rf'<form[^>]*action="{re.escape(action)}"[^>]*>.*?name="intent" value="([^"]+)"',
        html,
        re.DOTALL,
    )
    assert found is not None, action
    return found.group(1)


def success_target(response: httpx.Response, htmx: bool) -> str:
    """Where a successful action sends the browser: 303 Location, or htmx's HX-Location."""
    if htmx:
        assert response.status_code == 200, response.text
        return json.loads(response.headers["HX-Location"])["path"]
    assert response.status_code == 303, response.text
    return response.headers["location"]


class SignedIn:
    def __init__(self, app: Litestar, client: httpx.AsyncClient, customer: Customer) -> None:
        self.app = app
        self.client = client
        self.customer = customer
        self._token: str | None = None

    async def get(self, url: str, *, htmx: bool = False, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, headers=HX if htmx else {}, **kwargs)

    async def csrf(self) -> str:
        if self._token is None:
            response = await self.client.get("/portal")
            assert response.status_code == 200, response.text
            self._token = csrf_token(response.text)
        return self._token

    async def post(
        self,
        url: str,
        data: dict[str, str] | None = None,
        *,
        htmx: bool = False,
        csrf: bool = True,
    ) -> httpx.Response:
        body = dict(data or {})
        if csrf:
            body["_csrf_token"] = await self.csrf()
        return await self.client.post(url, data=body, headers=HX if htmx else {})

    async def reload(self) -> Customer:
        self.customer = await customer_by_email(self.customer.email or "")
        return self.customer

    async def flashes(self, url: str = "/portal/subscriptions") -> str:
        """A page after an action (it shows, and uses up, the flash messages)."""
        response = await self.get(url)
        assert response.status_code == 200, response.text
        return response.text


@asynccontextmanager
async def signed_in(
    settings: Settings, summary: demo_data.DemoSummary, email: str
) -> AsyncIterator[SignedIn]:
    customer = await customer_by_email(email)
    async with open_portal(settings, summary) as portal:
        token = await sessions.start(
            sessions.CUSTOMER, customer.id, configuration=summary.configuration_id
        )
        portal.client.cookies.set(sessions.cookie_name(sessions.CUSTOMER, settings), token)
        yield SignedIn(portal.app, portal.client, customer)


class FailingGateway:
    """Wraps the app's gateway; the named methods raise ``error`` instead."""

    def __init__(self, inner: Any, error: GatewayError, *methods: str) -> None:
        self.inner = inner
        self.error = error
        self.methods = set(methods)
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in self.methods:

            async def fail(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                raise self.error

            return fail
        return getattr(self.inner, name)
