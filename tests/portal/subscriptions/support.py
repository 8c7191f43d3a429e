"""Helpers to set the scene for the subscriptions tests; the signed-in client and the helpers all
portal tests share are in ``tests.portal.support`` (imported here too for older imports)."""

from __future__ import annotations

from typing import Any

from app.billing.tables import Price, Product, Subscription, SubscriptionItem
from tests.portal.support import customer_by_email
from tests.portal.support import intents_on as intents_on  # tests/merchant import it from here

LIST = "/portal/subscriptions"


async def subscription_of(email: str) -> dict[str, Any]:
    """The customer's newest subscription row."""
    customer = await customer_by_email(email)
    row = (
        await Subscription.select()
        .where(Subscription.customer == customer.id)
        .order_by(Subscription.created, ascending=False)
        .first()
        .output(load_json=True)
    )
    assert row is not None, email
    return row


async def items_of(subscription_id: str) -> list[dict[str, Any]]:
    return await SubscriptionItem.select(SubscriptionItem.quantity, SubscriptionItem.price).where(
        SubscriptionItem.subscription == subscription_id
    )


async def price_id(product: str, interval: str) -> str:
    row = (
        await Price.select(Price.id)
        .where((Price.product.name == product) & (Price.recurring_interval == interval))
        .first()
    )
    assert row is not None, (product, interval)
    return row["id"]


async def product_id(name: str) -> str:
    row = await Product.select(Product.id).where(Product.name == name).first()
    assert row is not None, name
    return row["id"]
