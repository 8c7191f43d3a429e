"""Example subscriptions, catalogue rows and configurations for the subscription rule tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from app.billing.queries import PlanItem, SubscriptionView
from app.configuration import features as f
from app.portal.subscriptions.plans import CatalogueRow, ChangeOption

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

TEAM_MONTH = PlanItem(
    id="si_1",
    price_id="price_team_month",
    product_id="prod_team",
    product_name="Team",
    unit_label="seat",
    unit_amount=2900,
    currency="usd",
    interval="month",
    interval_count=1,
    quantity=5,
    usage_type="licensed",
)


def make_sub(**changes) -> SubscriptionView:
    sub = SubscriptionView(
        id="sub_1",
        status="active",
        currency="usd",
        collection_method="charge_automatically",
        created=NOW - timedelta(days=100),
        current_period_start=NOW - timedelta(days=10),
        current_period_end=NOW + timedelta(days=20),
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        trial_end=None,
        pause_collection_behavior=None,
        pause_collection_resumes_at=None,
        schedule=None,
        items=[TEAM_MONTH],
    )
    return msgspec.structs.replace(sub, **changes)


def row(price_id: str, product: str, interval: str, amount: int, **changes) -> CatalogueRow:
    values = {
        "price_id": price_id,
        "product_id": f"prod_{product.lower()}",
        "product_name": product,
        "product_active": True,
        "unit_label": None,
        "price_active": True,
        "type": "recurring",
        "currency": "usd",
        "unit_amount": amount,
        "interval": interval,
        "interval_count": 1,
        "usage_type": "licensed",
        **changes,
    }
    return CatalogueRow(**values)


CATALOGUE = [
    row("price_starter_month", "Starter", "month", 900),
    row("price_starter_year", "Starter", "year", 9000),
    row("price_team_month", "Team", "month", 2900, unit_label="seat"),
    row("price_team_year", "Team", "year", 29000, unit_label="seat"),
    row("price_business_month", "Business", "month", 9900),
]


def update_config(
    allowed=("price", "quantity", "promotion_code"),
    conditions=(),
    products=None,
) -> f.SubscriptionUpdate:
    if products is None:
        products = [
            f.UpdatableProduct(
                product="prod_starter", prices=["price_starter_month", "price_starter_year"]
            ),
            f.UpdatableProduct(
                product="prod_team",
                prices=["price_team_month", "price_team_year"],
                adjustable_quantity=f.AdjustableQuantity(enabled=True, minimum=2, maximum=50),
            ),
            f.UpdatableProduct(product="prod_business", prices=["price_business_month"]),
        ]
    return f.SubscriptionUpdate(
        enabled=True,
        default_allowed_updates=list(allowed),
        products=products,
        proration_behavior="create_prorations",
        schedule_at_period_end_conditions=list(conditions),
        trial_update_behavior="end_trial",
    )


def option(price_id: str, options: list[ChangeOption]) -> ChangeOption:
    return next(o for o in options if o.price_id == price_id)
