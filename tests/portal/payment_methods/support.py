"""A signed-in portal client for the payment methods, invoices and details tests.

Signs in by starting a customer session directly (the login flow has its own tests) and reads the
CSRF token from a page's hidden ``_csrf_token`` field.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar

from app.audit.tables import AuditEvent
from app.billing import demo as demo_data
from app.billing.tables import Customer
from app.configuration import features as feature_types
from app.configuration.tables import PortalConfiguration
from app.login import sessions
from app.settings import Settings
from tests.helpers import HX, csrf_token, open_portal

INTENT_RE = re.compile(r'name="intent" value="([^"]+)"')


async def customer_by_email(email: str) -> Customer:
    found = await Customer.objects().where(Customer.email == email).first()
    assert found is not None, email
    return found


async def set_features(summary: demo_data.DemoSummary, **changes: Any) -> None:
    """Change parts of the demo configuration's features, e.g.
    ``set_features(demo, invoice_history={"enabled": False})``."""
    row = (
        await PortalConfiguration.select(PortalConfiguration.features)
        .where(PortalConfiguration.id == summary.configuration_id)
        .first()
    )
    current = feature_types.decode(row["features"])
    raw = feature_types.msgspec.to_builtins(current)
    for name, values in changes.items():
        raw[name] = {**raw[name], **values}
    features = feature_types.msgspec.convert(raw, feature_types.Features)
    await PortalConfiguration.update(
        {PortalConfiguration.features: feature_types.encode(features)}
    ).where(PortalConfiguration.id == summary.configuration_id)


async def audit_events(action: str) -> list[dict[str, Any]]:
    return await AuditEvent.select().where(AuditEvent.action == action).output(load_json=True)


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


def intents_on(html: str) -> list[str]:
    return INTENT_RE.findall(html)


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
