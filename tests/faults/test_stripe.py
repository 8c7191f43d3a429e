"""The Stripe API answering 500, 429 (with ``Stripe-Should-Retry``) and hanging, seen through the
portal over HTTP in Stripe mode: the real app, the real ``stripe`` SDK, and the Stripe-API test
server (``tests.stripe_api``) injecting the faults. A customer cancels at period end:

- the answer is the portal's page with a clear message (502, not a stack trace), the form keeps
  its intent;
- nothing changed locally (the mirror) nor, for 500 and 429, on Stripe;
- the action fails within 15 s;
- the other portal pages still render from the mirror, without a single Stripe call;
- submitting the same form again, once Stripe is well, changes Stripe exactly once.

Already covered at the gateway level (``tests/billing/stripe/test_gateway.py``):
``test_stripe_500_changes_nothing_and_a_retry_changes_once``,
``test_a_request_stripe_finished_after_our_timeout_is_not_repeated`` and
``test_hanging_stripe_fails_within_15_seconds`` (production timeouts: 10 s per request, 2
retries, 12 s per action). The hanging case here uses a gateway with short timeouts (1 s, no
retries) so the test takes seconds; it is the same class with other numbers.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from app.billing.stripe_client import UNAVAILABLE
from app.billing.stripe_gateway import StripeGateway
from app.billing.tables import Subscription
from app.login import sessions
from app.settings import Settings
from tests.billing.stripe.support import assert_allowed_by_types
from tests.helpers import Portal, csrf_token, open_portal
from tests.stripe_api import StripeAPIServer
from tests.stripe_api.fixtures import stripe_api  # noqa: F401  (fixture)

BOUND = 15.0  # seconds: the bound for an action against a failing Stripe
PAGES = ["/portal", "/portal/subscriptions", "/portal/invoices", "/portal/payment-methods"]
INTENT_RE = re.compile(r'name="intent" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _type_checked(stripe_api: StripeAPIServer) -> Iterator[None]:  # noqa: F811
    yield
    assert_allowed_by_types(stripe_api)


@pytest.fixture
def world(stripe_api: StripeAPIServer) -> dict[str, Any]:  # noqa: F811
    """On Stripe: Pat, with a default Visa card, on Basic ($10 a month)."""
    product = stripe_api.create_product(name="Basic")
    price = stripe_api.create_price(
        product=product["id"], currency="usd", unit_amount=1000, recurring={"interval": "month"}
    )
    customer = stripe_api.create_customer(email="pat.payer@example.test", name="Pat Payer")
    stripe_api.create_payment_method(customer["id"], card="pm_card_visa", default=True)
    sub = stripe_api.create_subscription(customer=customer["id"], items=[{"price": price["id"]}])
    return {"customer": customer["id"], "sub": sub["id"]}


class Customer:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.client = portal.client

    async def post(self, url: str, data: dict[str, str]):
        page = await self.client.get("/portal")
        return await self.client.post(url, data={**data, "_csrf_token": csrf_token(page.text)})


@pytest.fixture
async def pat(
    db,
    shop,
    settings: Settings,
    stripe_api: StripeAPIServer,  # noqa: F811
    world: dict[str, Any],
) -> AsyncIterator[Customer]:
    """Pat signed in to the portal in Stripe mode, the mirror filled from Stripe."""
    stripe_settings = msgspec.structs.replace(
        settings,
        billing="stripe",
        stripe_secret_key=stripe_api.api_key,
        stripe_api_base=stripe_api.url,
    )
    async with open_portal(stripe_settings, shop) as portal:
        await portal.app.state.gateway.refresh_customer(world["customer"])
        token = await sessions.start(
            sessions.CUSTOMER, world["customer"], configuration=shop.configuration_id
        )
        portal.client.cookies.set(sessions.cookie_name(sessions.CUSTOMER, stripe_settings), token)
        stripe_api.clear_requests()
        yield Customer(portal)


async def mirrored(sub_id: str) -> bool:
    row = await Subscription.select(Subscription.cancel_at_period_end).where(
        Subscription.id == sub_id
    )
    return row[0]["cancel_at_period_end"]


def updates(stripe_api: StripeAPIServer) -> int:  # noqa: F811
    return len(stripe_api.events_of("customer.subscription.updated"))


async def pages_render_from_the_mirror(pat: Customer, stripe_api: StripeAPIServer) -> None:  # noqa: F811
    before = len(stripe_api.requests)
    for url in PAGES:
        response = await pat.client.get(url)
        assert response.status_code == 200, (url, response.text)
    assert len(stripe_api.requests) == before  # not one call to Stripe for a page


FAULTS = {
    "500": {"status": 500, "times": None},
    "429": {"status": 429, "times": None},  # with Stripe-Should-Retry: true (the SDK retries)
    "hanging": {"delay_seconds": 3.0, "times": 1},  # Stripe still does it, after our timeout
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_failing_stripe_during_a_customer_action(
    pat: Customer,
    stripe_api: StripeAPIServer,  # noqa: F811
    world: dict[str, Any],
    fault: str,
) -> None:
    sub_id = world["sub"]
    if fault == "hanging":
        app = pat.portal.app
        production = app.state.gateway
        app.state.gateway = StripeGateway(
            production.settings, request_timeout=1.0, deadline=1.5, max_network_retries=0
        )
        await production.aclose()
    cancel_url = f"/portal/subscriptions/{sub_id}/cancel"
    review = await pat.post(f"{cancel_url}/review", {})
    assert review.status_code == 200, review.text
    intent = INTENT_RE.findall(review.text)[-1]
    before = updates(stripe_api)
    stripe_api.inject_fault(f"/v1/subscriptions/{sub_id}", method="POST", **FAULTS[fault])

    started = time.monotonic()
    failed = await pat.post(cancel_url, {"intent": intent})
    assert time.monotonic() - started < BOUND
    assert failed.status_code == 502
    html = failed.text
    assert UNAVAILABLE in html
    assert "<!doctype html>" in html.lower()
    assert "Traceback" not in html
    assert "stripe" not in html.lower().replace("stripe.com", "")
    assert html.count("<h1") == 1
    assert failed.headers["content-security-policy"]
    assert INTENT_RE.findall(html)[-1] == intent  # the same intent, for a safe retry
    assert await mirrored(sub_id) is False  # nothing changed locally

    await pages_render_from_the_mirror(pat, stripe_api)
    overview = await pat.client.get("/portal")
    assert "Billing is temporarily unreachable" in overview.text

    if fault == "hanging":
        # Stripe finishes the request it was given after our timeout (as it can for real).
        for _ in range(200):  # up to 10 s
            if stripe_api.get(sub_id)["cancel_at_period_end"]:
                break
            await asyncio.sleep(0.05)
        assert updates(stripe_api) == before + 1
    else:
        assert stripe_api.get(sub_id)["cancel_at_period_end"] is False
        assert updates(stripe_api) == before
        stripe_api.clear_faults()

    again = await pat.post(cancel_url, {"intent": intent})  # the same form, submitted again
    assert again.status_code == 303, again.text
    assert again.headers["location"] == "/portal/subscriptions"
    assert stripe_api.get(sub_id)["cancel_at_period_end"] is True
    assert updates(stripe_api) == before + 1  # Stripe changed exactly once
    assert await mirrored(sub_id) is True
    if fault == "hanging":
        assert any(r.replayed for r in stripe_api.requests)  # answered from Stripe's store
        await pat.portal.app.state.gateway.aclose()
