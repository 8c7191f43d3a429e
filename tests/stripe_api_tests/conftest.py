"""Fixtures for the fake Stripe API's own tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stripe_api import StripeAPIServer
from tests.stripe_api.fixtures import stripe_api, stripe_client

__all__ = ["catalog", "stripe_api", "stripe_client"]

JAN_1_2025 = 1_735_689_600  # 2025-01-01T00:00:00Z


@pytest.fixture
def catalog(stripe_api: StripeAPIServer) -> dict[str, Any]:
    """Basic $10/month and Pro $30/month, plus a Pro yearly price; the clock frozen on 1 Jan."""
    stripe_api.clock.freeze(JAN_1_2025)
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
def paying_customer(stripe_api: StripeAPIServer, catalog: dict[str, Any]) -> dict[str, Any]:
    """A customer with a default Visa card."""
    customer = stripe_api.create_customer(email="payer@example.test", name="Pat Payer")
    stripe_api.create_payment_method(customer["id"], card="pm_card_visa", default=True)
    return customer
