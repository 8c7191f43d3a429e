"""How many SQL queries a page's data costs: a fixed number, whatever the number of
subscriptions, items or invoices (no query per row), and none repeated for the signed-in customer
the session check already read. Counts, not timings."""

from __future__ import annotations

from datetime import timedelta

from app import clock
from app.billing import queries
from app.billing.tables import (
    Customer,
    Invoice,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)
from tests.querycount import counted

NOW = clock.now().replace(microsecond=0)


async def _customer(n: int, *, subscriptions: int, items: int, invoices: int) -> Customer:
    customer = Customer(
        id=f"cus_count{n}",
        email=f"count{n}@example.test",
        invoice_settings_default_payment_method=f"pm_count{n}",
        created=NOW - timedelta(days=100),
    )
    await Customer.insert(customer)
    await PaymentMethod.insert(
        PaymentMethod(id=f"pm_count{n}", customer=customer.id, card_brand="visa", card_last4="4242")
    )
    for p in range(items):
        await Product.insert(Product(id=f"prod_count{n}_{p}", name=f"Plan {p}"))
        await Price.insert(
            Price(
                id=f"price_count{n}_{p}",
                product=f"prod_count{n}_{p}",
                currency="usd",
                unit_amount=1000 + p,
                recurring_interval="month",
            )
        )
    for s in range(subscriptions):
        sub = Subscription(
            id=f"sub_count{n}_{s}",
            customer=customer.id,
            status="active",
            currency="usd",
            current_period_start=NOW - timedelta(days=5),
            current_period_end=NOW + timedelta(days=25),
        )
        await Subscription.insert(sub)
        await SubscriptionItem.insert(
            *(
                SubscriptionItem(id=f"si_count{n}_{s}_{p}", subscription=sub.id, price=price)
                for p, price in enumerate(f"price_count{n}_{p}" for p in range(items))
            )
        )
    await Invoice.insert(
        *(
            Invoice(
                id=f"in_count{n}_{i}",
                customer=customer.id,
                status="paid",
                currency="usd",
                total=1000,
                created=NOW - timedelta(days=30 * i),
            )
            for i in range(invoices)
        )
    )
    return customer


async def test_overview_costs_the_same_few_queries_for_one_or_many_rows(db, monkeypatch):
    small = await _customer(1, subscriptions=1, items=1, invoices=1)
    large = await _customer(2, subscriptions=4, items=3, invoices=12)
    counts = []
    for customer in (small, large):
        with counted(monkeypatch) as seen:
            found = await queries.overview(customer.id)
        assert found is not None
        counts.append(len(seen))
    assert counts == [5, 5]  # customer, subscriptions, their items, card, recent invoices
    assert len(found.subscriptions) == 4
    assert all(len(sub.items) == 3 for sub in found.subscriptions)
    assert len(found.recent_invoices) == queries.RECENT_INVOICES


async def test_overview_reuses_the_signed_in_customer_row(db, monkeypatch):
    customer = await _customer(3, subscriptions=2, items=2, invoices=3)
    with counted(monkeypatch) as seen:
        found = await queries.overview(customer.id, customer=customer)
    assert found is not None
    assert found.customer is customer
    assert len(seen) == 4
    assert not any('FROM "billing_customer"' in sql for sql in seen)


async def test_overview_rereads_a_row_that_is_not_the_one_asked_for(db, monkeypatch):
    customer = await _customer(4, subscriptions=1, items=1, invoices=1)
    other = await _customer(5, subscriptions=1, items=1, invoices=1)
    found = await queries.overview(customer.id, customer=other)
    assert found is not None
    assert found.customer.id == customer.id


async def test_invoice_pages_cost_one_query_whatever_their_length(db, monkeypatch):
    customer = await _customer(6, subscriptions=1, items=1, invoices=45)
    with counted(monkeypatch) as seen:
        page = await queries.invoices_page(customer.id, 2)
    assert len(seen) == 1
    assert len(page.rows) == 20
    assert page.has_next
