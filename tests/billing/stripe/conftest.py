"""Fixtures for the Stripe gateway, mirror, webhook and sync tests.

Every test talks to the real HTTP test server (``tests.stripe_api``) through the real SDK, and
runs once per database backend (the ``db`` fixture). After each test, every request the server
received is checked again against the ``stripe`` package's parameter types (``type_checked``):
a gateway call sending a parameter the types do not allow fails the test that made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from app.billing.stripe_gateway import StripeGateway
from app.settings import Settings
from tests.billing.stripe.support import assert_allowed_by_types
from tests.stripe_api import StripeAPIServer
from tests.stripe_api.fixtures import stripe_api  # noqa: F401  (fixture)

WEBHOOK_SECRET = "whsec_portico_test_secret"


@pytest.fixture(autouse=True, scope="session")
def _answers_without_delayed_ack() -> Iterator[None]:
    """The test server writes a response's headers and body in two ``send()`` calls; with Nagle's
    algorithm on, the body then waits for the client's delayed ACK (~40 ms per request). Turning
    Nagle off for its sockets (``StreamRequestHandler.disable_nagle_algorithm``) changes nothing
    but the latency."""
    from tests.stripe_api import server

    patch = pytest.MonkeyPatch()
    patch.setattr(server._Handler, "disable_nagle_algorithm", True)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def type_checked(stripe_api: StripeAPIServer) -> Iterator[None]:  # noqa: F811
    """Fails the test if any request it sent is not allowed by the stripe package's types."""
    yield
    assert_allowed_by_types(stripe_api)


@pytest.fixture
def stripe_settings(settings: Settings, stripe_api: StripeAPIServer) -> Settings:  # noqa: F811
    return msgspec.structs.replace(
        settings,
        billing="stripe",
        stripe_secret_key=stripe_api.api_key,
        stripe_api_base=stripe_api.url,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
async def gateway(db, stripe_settings: Settings) -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(stripe_settings)
    try:
        yield gateway
    finally:
        await gateway.aclose()


@pytest.fixture
def catalog(stripe_api: StripeAPIServer) -> dict[str, Any]:  # noqa: F811
    """Basic $10/month and Pro $30/month (products Basic, Pro) and Pro yearly."""
    basic = stripe_api.create_product(name="Basic")
    pro = stripe_api.create_product(name="Pro")
    monthly = {"interval": "month"}
    return {
        "basic": stripe_api.create_price(
            product=basic["id"], currency="usd", unit_amount=1000, recurring=monthly
        ),
        "pro": stripe_api.create_price(
            product=pro["id"], currency="usd", unit_amount=3000, recurring=monthly
        ),
        "pro_yearly": stripe_api.create_price(
            product=pro["id"], currency="usd", unit_amount=30000, recurring={"interval": "year"}
        ),
    }


@pytest.fixture
def payer(stripe_api: StripeAPIServer) -> dict[str, Any]:  # noqa: F811
    """A customer with a default Visa card."""
    customer = stripe_api.create_customer(email="pat.payer@example.test", name="Pat Payer")
    stripe_api.create_payment_method(customer["id"], card="pm_card_visa", default=True)
    return stripe_api.get(customer["id"])


@pytest.fixture
async def subscribed(
    stripe_api: StripeAPIServer,  # noqa: F811
    gateway: StripeGateway,
    catalog: dict[str, Any],
    payer: dict[str, Any],
) -> dict[str, Any]:
    """Pat on Basic (paid), mirrored through ``refresh_customer``."""
    sub = stripe_api.create_subscription(
        customer=payer["id"], items=[{"price": catalog["basic"]["id"]}]
    )
    await gateway.refresh_customer(payer["id"])
    stripe_api.clear_requests()
    return sub
