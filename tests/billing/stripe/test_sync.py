"""Backfill (``portico stripe sync``): a few hundred objects per type, interrupted and resumed,
then run again without changing anything; the upsert on both engines; the CLI commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from click.testing import CliRunner
from piccolo.table import Table

from app import db as database
from app.billing import stripe_backfill
from app.billing.stripe_batch import upsert
from app.billing.stripe_gateway import StripeGateway
from app.billing.stripe_tables import StripeSyncCursor, StripeSyncRun
from app.billing.tables import (
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    PromotionCode,
    Subscription,
    SubscriptionItem,
    TaxId,
)
from app.cli import main
from tests.conftest import DATABASE_URLS
from tests.stripe_api import StripeAPIServer, lifecycle
from tests.stripe_api.resources import catalog as catalog_resource
from tests.stripe_api.resources import customers, discounts

N = 210  # objects per type: three pages of 100

MIRRORED: list[type[Table]] = [
    Product,
    Price,
    Coupon,
    PromotionCode,
    Customer,
    Subscription,
    SubscriptionItem,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    TaxId,
]


@pytest.fixture
def populated(stripe_api: StripeAPIServer) -> None:
    """N products, prices, coupons, promotion codes, customers (each with a default card, a
    tax id and a paid subscription, so N invoices). Seeded with the server's own object
    functions: ``stripe_api.create`` snapshots the whole state per call (quadratic here)."""
    state = stripe_api.state
    with state.lock:
        prices = [
            catalog_resource.new_price(
                state,
                {
                    "currency": "usd",
                    "unit_amount": 100 * (i + 1),
                    "recurring": {"interval": "month"},
                    "product_data": {"name": f"Plan {i}"},
                },
            )
            for i in range(N)
        ]
        for i in range(N):
            coupon = discounts.new_coupon(
                state, {"percent_off": float(5 + i % 50), "duration": "forever"}
            )
            discounts.new_promotion_code(
                state, {"promotion": {"type": "coupon", "coupon": coupon["id"]}, "code": f"CODE{i}"}
            )
    for i in range(N):
        with state.lock:
            customer = customers.new_customer(state, {"email": f"customer{i}@example.test"})
        stripe_api.create_payment_method(customer["id"], default=True)
        with state.lock:
            customers.create_tax_id(state, customer, {"type": "eu_vat", "value": f"DE{i:09d}"})
            lifecycle.new_subscription(state, customer, {"items": [{"price": prices[i]["id"]}]})


def server_counts(server: StripeAPIServer) -> dict[str, int]:
    table = server.state.table
    return {
        "products": len(table("product")),
        "prices": len(table("price")),
        "coupons": len(table("coupon")),
        "promotion_codes": len(table("promotion_code")),
        "customers": len(table("customer")),
        "subscriptions": len(table("subscription")),
        "invoices": len(table("invoice")),
        "payment_methods": sum(1 for pm in table("payment_method").values() if pm["customer"]),
        "tax_ids": len(table("tax_id")),
    }


async def mirror_counts() -> dict[str, int]:
    return {
        "products": await Product.count(),
        "prices": await Price.count(),
        "coupons": await Coupon.count(),
        "promotion_codes": await PromotionCode.count(),
        "customers": await Customer.count(),
        "subscriptions": await Subscription.count(),
        "invoices": await Invoice.count(),
        "payment_methods": await PaymentMethod.count().where(PaymentMethod.customer.is_not_null()),
        "tax_ids": await TaxId.count(),
    }


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    return {table._meta.tablename: await table.select().order_by(table.id) for table in MIRRORED}


async def test_backfill_resumes_after_interruptions_and_reruns_change_nothing(
    stripe_api: StripeAPIServer, gateway: StripeGateway, populated: None
) -> None:
    client = gateway.client
    injected: set[str] = set()

    def interrupt(name: str, count: int, done: bool) -> None:
        # Stripe fails in the middle of the customers, then in the middle of the tax ids.
        if name == "customers" and count >= 100 and name not in injected:
            injected.add(name)
            stripe_api.inject_fault("/v1/customers", status=500, should_retry=False)
        if name == "tax_ids" and count >= 25 and name not in injected:
            injected.add(name)
            stripe_api.inject_fault("/v1/customers/*/tax_ids", status=500, should_retry=False)

    with pytest.raises(stripe.APIError):
        await stripe_backfill.backfill(client, progress=interrupt)
    assert await Customer.count() == 100
    assert await Product.count() == N
    assert await PromotionCode.count() == N
    stripe_api.clear_requests()
    with pytest.raises(stripe.APIError):
        await stripe_backfill.backfill(client, progress=interrupt)
    customer_pages = [r for r in stripe_api.requests if r.path == "/v1/customers"]
    assert customer_pages[0].params.get("starting_after")  # resumed, not started over
    assert not [r for r in stripe_api.requests if r.path == "/v1/products"]  # already done

    seen: list[tuple[str, int, bool]] = []
    counts = await stripe_backfill.backfill(client, progress=lambda *a: seen.append(a))
    expected = server_counts(stripe_api)
    assert expected["customers"] == N
    assert expected["invoices"] == N
    assert await mirror_counts() == expected
    assert counts["customers"] == N
    assert counts["tax_ids"] == N
    assert ("subscriptions", N, True) in seen
    assert await SubscriptionItem.count() == N
    assert await InvoiceLine.count() == N
    cursors = await StripeSyncCursor.select().where(StripeSyncCursor.id != "events")
    assert len(cursors) == len(stripe_backfill.STEP_NAMES)
    assert all(c["done"] for c in cursors)

    # A finished pass: running again starts a new pass, and changes nothing.
    before = await snapshot()
    stripe_api.clear_requests()
    await stripe_backfill.backfill(client)
    assert (
        next(r for r in stripe_api.requests if r.path == "/v1/products").params.get(
            "starting_after"
        )
        is None
    )
    assert await snapshot() == before
    assert await mirror_counts() == expected


async def test_upsert_inserts_then_updates_only_the_given_columns(db) -> None:
    created = datetime(2025, 1, 1, tzinfo=UTC)
    await upsert(
        Customer,
        [{"id": "cus_1", "email": "a@example.test", "name": "A", "created": created}],
    )
    await Customer.update({Customer.time_zone: "Europe/Paris"}).where(Customer.id == "cus_1")
    await upsert(
        Customer,
        [
            {"id": "cus_1", "email": "b@example.test", "name": "B", "created": created},
            {"id": "cus_2", "email": "c@example.test", "name": "C", "created": created},
            {"id": "cus_2", "email": "d@example.test", "name": "D", "created": created},
        ],
    )
    rows = await Customer.select(Customer.id, Customer.email, Customer.time_zone).order_by(
        Customer.id
    )
    assert rows == [
        {"id": "cus_1", "email": "b@example.test", "time_zone": "Europe/Paris"},
        {"id": "cus_2", "email": "d@example.test", "time_zone": None},
    ]
    await upsert(Customer, [{"id": "cus_1", "deleted": True}])
    row = await Customer.objects().where(Customer.id == "cus_1").first()
    assert row is not None
    assert row.deleted is True
    assert row.email == "b@example.test"


async def test_cli_sync_and_reconcile(
    stripe_api: StripeAPIServer, db, catalog: dict[str, Any], payer: dict[str, Any]
) -> None:
    stripe_api.create_subscription(customer=payer["id"], items=[{"price": catalog["pro"]["id"]}])
    env = {
        "PORTICO_DATABASE_URL": DATABASE_URLS[id(db)],
        "PORTICO_STRIPE_SECRET_KEY": stripe_api.api_key,
        "PORTICO_STRIPE_API_BASE": stripe_api.url,
    }
    runner = CliRunner()
    try:
        result = await asyncio.to_thread(runner.invoke, main, ["stripe", "sync"], env=env)
        assert result.exit_code == 0, result.output
        assert "Syncing from Stripe" in result.output
        assert "customers: 1" in result.output
        assert "subscriptions: 1" in result.output
        stripe_api.call("POST", f"/v1/customers/{payer['id']}", name="Changed While Away")
        result = await asyncio.to_thread(runner.invoke, main, ["stripe", "reconcile"], env=env)
        assert result.exit_code == 0, result.output
        assert "applied " in result.output
        assert "Events since" in result.output
        stripe_api.inject_fault("/v1/events", status=500, times=None, should_retry=False)
        result = await asyncio.to_thread(runner.invoke, main, ["stripe", "reconcile"], env=env)
        assert result.exit_code == 1
        assert "Run `portico stripe reconcile` again" in result.output
        result = await asyncio.to_thread(
            runner.invoke, main, ["stripe", "sync"], env={**env, "PORTICO_STRIPE_SECRET_KEY": ""}
        )
        assert result.exit_code == 1
        assert "PORTICO_STRIPE_SECRET_KEY" in result.output
    finally:
        database.bind(db)
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert customer.name == "Changed While Away"
    [run] = await StripeSyncRun.select().output(load_json=True)
    assert (run["trigger"], run["status"]) == ("cli", "succeeded")
    assert run["counts"]["customers"] == 1
