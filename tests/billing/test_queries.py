from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from app import clock
from app.billing import demo, queries
from app.billing.tables import (
    Coupon,
    Customer,
    Invoice,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    SubscriptionSchedule,
)
from tests.portal.subscriptions.examples import make_sub

NOW = clock.now().replace(microsecond=0)
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_test{next(_ids):06d}"


async def _customer(email: str, *, days_ago: int, deleted: bool = False) -> Customer:
    customer = Customer(
        id=_id("cus"), email=email, name=email, created=NOW - timedelta(days=days_ago)
    )
    customer.deleted = deleted
    await Customer.insert(customer)
    return customer


async def _price(unit_amount: int = 1500, interval: str = "month") -> Price:
    product = Product(id=_id("prod"), name=f"Plan {unit_amount}")
    price = Price(
        id=_id("price"),
        product=product.id,
        currency="usd",
        unit_amount=unit_amount,
        recurring_interval=interval,
    )
    await Product.insert(product)
    await Price.insert(price)
    return price


async def _subscription(
    customer: Customer,
    status: str = "active",
    *,
    price: Price | None = None,
    quantity: int = 1,
    ended_days_ago: int | None = None,
) -> Subscription:
    price = price or await _price()
    start, end = NOW - timedelta(days=10), NOW + timedelta(days=20)
    ended = NOW - timedelta(days=ended_days_ago) if ended_days_ago is not None else None
    sub = Subscription(
        id=_id("sub"),
        customer=customer.id,
        status=status,
        currency="usd",
        created=start,
        start_date=start,
        current_period_start=start,
        current_period_end=end,
        ended_at=ended,
        canceled_at=ended,
    )
    await Subscription.insert(sub)
    await SubscriptionItem.insert(
        SubscriptionItem(
            id=_id("si"),
            subscription=sub.id,
            price=price.id,
            quantity=quantity,
            current_period_start=start,
            current_period_end=end,
        )
    )
    return sub


async def _invoices(customer: Customer, count: int, status: str = "paid") -> list[Invoice]:
    rows = [
        Invoice(
            id=_id("in"),
            customer=customer.id,
            number=f"T-{n:04d}",
            status=status,
            currency="usd",
            total=100 * n,
            created=NOW - timedelta(days=count - n),
        )
        for n in range(1, count + 1)
    ]
    await Invoice.insert(*rows)
    return rows


# --- choose_customer ---------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["SAM.Shared@Example.com", "sam.shared@example.com"])
async def test_choose_customer_prefers_the_one_with_an_active_subscription(db, email):
    await demo.seed()
    customer = await queries.choose_customer(email)
    assert customer is not None
    assert customer.name == "Sam Older"


async def test_choose_customer_falls_back_to_the_newest_when_none_is_active(db):
    await demo.seed()
    older = await Customer.objects().where(Customer.name == "Sam Older").first()
    await Subscription.update({Subscription.status: "canceled"}).where(
        Subscription.customer == older.id
    )
    customer = await queries.choose_customer("sam.shared@example.com")
    assert customer is not None
    assert customer.name == "Sam Newer"


async def test_choose_customer_unknown_email(db):
    await _customer("someone@example.com", days_ago=3)
    assert await queries.choose_customer("nobody@example.com") is None
    assert await queries.choose_customer("") is None


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        ("active", True),
        ("trialing", True),
        ("past_due", True),
        ("unpaid", True),
        ("paused", True),
        ("incomplete", False),
        ("incomplete_expired", False),
        ("canceled", False),
    ],
)
async def test_which_statuses_count_as_active(db, status, counts):
    older = await _customer("pair@example.com", days_ago=30)
    newer = await _customer("Pair@example.com", days_ago=2)
    await _subscription(older, status)
    chosen = await queries.choose_customer("pair@example.com")
    assert chosen is not None
    assert chosen.id == (older.id if counts else newer.id)
    assert (status in queries.ACTIVE_STATUSES) is counts


async def test_deleted_customers_are_never_chosen(db):
    older = await _customer("gone@example.com", days_ago=30)
    newer = await _customer("gone@example.com", days_ago=2, deleted=True)
    await _subscription(newer)
    chosen = await queries.choose_customer("gone@example.com")
    assert chosen is not None
    assert chosen.id == older.id

    explained = await queries.explain_choice("GONE@example.com")
    assert [c.id for c, _ in explained] == [newer.id, older.id]
    assert explained[0][1].startswith("Not chosen: deleted")
    assert explained[1][1].startswith("Chosen")


async def test_explain_choice_gives_a_reason_for_every_candidate(db):
    await demo.seed()
    explained = await queries.explain_choice("sam.shared@example.com")
    reasons = {customer.name: reason for customer, reason in explained}
    assert reasons["Sam Older"].startswith("Chosen: the newest customer with an active")
    assert reasons["Sam Newer"].startswith("Not chosen")
    assert await queries.explain_choice("nobody@example.com") == []


# --- overview ----------------------------------------------------------------------------------


async def test_overview_of_jenny(db):
    await demo.seed()
    jenny = await queries.choose_customer("jenny.rosen@example.com")
    view = await queries.overview(jenny.id)
    assert view is not None
    assert view.customer.name == "Jenny Rosen"

    [sub] = view.subscriptions
    assert sub.status == "active"
    [item] = sub.items
    assert (item.product_name, item.quantity, item.unit_amount) == ("Team", 5, 2900)
    assert (item.interval, item.interval_count, item.currency) == ("month", 1, "usd")
    assert sub.next_charge is not None
    assert sub.next_charge.amount == 5 * 2900
    assert sub.next_charge.date == sub.current_period_end
    assert sub.current_period_start <= clock.now() < sub.next_charge.date
    assert sub.access_ends is None

    card = view.default_payment_method
    assert card is not None
    assert (card.brand, card.last4) == ("visa", "4242")
    assert (card.exp_year, card.exp_month) > (NOW.year, NOW.month)

    invoices = view.recent_invoices
    assert len(invoices) == 5
    assert [i.created for i in invoices] == sorted((i.created for i in invoices), reverse=True)
    [open_invoice] = [i for i in invoices if i.status == "open"]
    assert open_invoice.amount_remaining > 0
    assert open_invoice.due_date > clock.now()


async def test_overview_of_a_subscription_that_cancels_at_period_end(db):
    await demo.seed()
    lee = await queries.choose_customer("lee.canceling@example.com")
    view = await queries.overview(lee.id)
    [sub] = view.subscriptions
    assert sub.cancel_at_period_end
    assert sub.is_canceling
    assert sub.access_ends == sub.current_period_end
    assert sub.next_charge is None
    assert sub.items[0].interval == "year"


async def test_overview_shows_recently_ended_subscriptions_only(db):
    customer = await _customer("history@example.com", days_ago=400)
    live = await _subscription(customer, "active")
    recent = await _subscription(customer, "canceled", ended_days_ago=30)
    await _subscription(customer, "canceled", ended_days_ago=120)
    await _subscription(customer, "incomplete_expired")

    view = await queries.overview(customer.id)
    assert [s.id for s in view.subscriptions] == [live.id, recent.id]
    ended = view.subscriptions[1]
    assert ended.next_charge is None
    assert ended.access_ends == NOW - timedelta(days=30)
    assert not ended.is_active
    assert view.default_payment_method is None


async def test_overview_skips_drafts_and_unknown_customers(db):
    customer = await _customer("drafts@example.com", days_ago=30)
    await _invoices(customer, 3)
    [draft] = await _invoices(customer, 1, status="draft")
    view = await queries.overview(customer.id)
    assert len(view.recent_invoices) == 3
    assert draft.id not in {i.id for i in view.recent_invoices}
    assert await queries.overview("cus_missing") is None


async def test_overview_runs_a_fixed_number_of_queries(db, monkeypatch):
    customer = await _customer("many@example.com", days_ago=30)
    await _invoices(customer, 8)
    engine_class = type(db)
    original = engine_class.run_querystring
    seen: list[str] = []

    async def counting(engine, querystring, *args, **kwargs):
        seen.append(str(querystring))
        return await original(engine, querystring, *args, **kwargs)

    # Piccolo engines have __slots__: patch the class, not the instance.
    monkeypatch.setattr(engine_class, "run_querystring", counting)

    await _subscription(customer, quantity=2)
    seen.clear()
    one = await queries.overview(customer.id)
    queries_for_one = len(seen)

    for status in ("active", "trialing", "past_due", "paused"):
        await _subscription(customer, status, quantity=3)
    seen.clear()
    five = await queries.overview(customer.id)

    assert len(one.subscriptions) == 1
    assert len(five.subscriptions) == 5
    assert all(len(s.items) == 1 for s in five.subscriptions)
    assert len(seen) == queries_for_one <= 5


# --- subscriptions: one read, one "next charge" rule ----------------------------------------------


async def test_subscriptions_and_one_subscription_through_the_customer(db):
    customer = await _customer("subs@example.com", days_ago=30)
    other = await _customer("other@example.com", days_ago=30)
    sub = await _subscription(customer, quantity=3, price=await _price(900))
    [view] = await queries.subscriptions(customer.id)
    assert (view.id, view.title, view.collection_method) == (
        sub.id,
        "Plan 900",
        "charge_automatically",
    )
    assert view.items[0].usage_type is None  # not set on this price: licensed
    assert view.next_charge == queries.NextCharge(
        amount=3 * 900, currency="usd", date=view.current_period_end
    )
    assert await queries.subscription(customer.id, sub.id) == view
    assert await queries.subscription(other.id, sub.id) is None
    assert await queries.subscription(customer.id, "") is None
    assert await queries.subscription(customer.id, "x" * 65) is None


async def _schedule_and_discount(sub: Subscription, customer: Customer) -> None:
    """A downgrade to 2 x 5.00 at the period end, and 20% off."""
    cheaper = await _price(500)
    await SubscriptionSchedule.insert(
        SubscriptionSchedule(
            id="sub_sched_test",
            customer=customer.id,
            subscription=sub.id,
            status="active",
            next_phase_start=sub.current_period_end,
            next_phase_price=cheaper.id,
            next_phase_quantity=2,
        )
    )
    await Coupon.insert(Coupon(id="TWENTY", percent_off=20, duration="forever", valid=True))
    await Subscription.update(
        {Subscription.schedule: "sub_sched_test", Subscription.discount_coupon: "TWENTY"}
    ).where(Subscription.id == sub.id)


async def test_next_charge_follows_the_scheduled_plan_and_the_discount(db):
    customer = await _customer("scheduled@example.com", days_ago=30)
    sub = await _subscription(customer, quantity=3, price=await _price(900))
    await _schedule_and_discount(sub, customer)
    view = await queries.subscription(customer.id, sub.id)
    assert view.pending is not None
    assert (view.pending.product_name, view.pending.quantity, view.pending.amount) == (
        "Plan 500",
        2,
        1000,
    )
    assert view.discount is not None
    assert (view.discount.coupon_id, view.discount.percent_off) == ("TWENTY", 20)
    assert view.next_charge.amount == 1000 - 200
    # A released schedule no longer counts.
    await SubscriptionSchedule.update({SubscriptionSchedule.status: "released"}).where(
        SubscriptionSchedule.id == "sub_sched_test"
    )
    view = await queries.subscription(customer.id, sub.id)
    assert view.pending is None
    assert view.next_charge.amount == 2700 - 540


async def test_the_overview_and_the_subscriptions_page_agree(db):
    customer = await _customer("agree@example.com", days_ago=30)
    sub = await _subscription(customer, quantity=3, price=await _price(900))
    await _schedule_and_discount(sub, customer)
    canceling = await _subscription(customer)
    await Subscription.update({Subscription.cancel_at_period_end: True}).where(
        Subscription.id == canceling.id
    )
    overview = await queries.overview(customer.id)
    listed = await queries.subscriptions(customer.id)
    assert overview.subscriptions == listed
    by_id = {view.id: view for view in overview.subscriptions}
    assert by_id[sub.id].next_charge.amount == 800
    assert by_id[canceling.id].next_charge is None
    assert by_id[canceling.id].access_ends == by_id[canceling.id].current_period_end


@pytest.mark.parametrize(
    ("changes", "renews"),
    [
        ({}, True),
        ({"status": "paused"}, False),
        ({"pause_collection_behavior": "void"}, False),
        ({"cancel_at_period_end": True}, False),
        ({"cancel_at": NOW + timedelta(days=5)}, False),
        ({"status": "canceled", "ended_at": NOW}, False),
    ],
)
def test_next_charge_only_when_it_renews(changes, renews):
    view = make_sub(**changes)
    assert (view.next_charge is not None) is renews


# --- invoices_page -----------------------------------------------------------------------------


async def test_invoices_page_paginates_newest_first(db):
    customer = await _customer("pages@example.com", days_ago=900)
    other = await _customer("other@example.com", days_ago=900)
    created = await _invoices(customer, 45)
    await _invoices(customer, 2, status="draft")
    await _invoices(other, 3)
    newest_first = [i.id for i in reversed(created)]

    first = await queries.invoices_page(customer.id, 1)
    assert [r.id for r in first.rows] == newest_first[:20]
    assert first.has_next
    assert not first.has_previous

    third = await queries.invoices_page(customer.id, 3)
    assert [r.id for r in third.rows] == newest_first[40:]
    assert not third.has_next
    assert third.has_previous

    beyond = await queries.invoices_page(customer.id, 4)
    assert beyond.rows == []
    assert not beyond.has_next

    exact = await queries.invoices_page(customer.id, 3, per_page=15)
    assert len(exact.rows) == 15
    assert not exact.has_next

    clamped = await queries.invoices_page(customer.id, 0, per_page=10)
    assert clamped.page == 1
    assert [r.id for r in clamped.rows] == newest_first[:10]
