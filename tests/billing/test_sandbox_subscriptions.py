"""Plan and quantity changes in the sandbox, with the arithmetic written out.

The world (``sandbox_world``): Team at $29/seat monthly, 5 seats, period 1 Mar → 31 Mar 2026
(30 days), now = 11 Mar 2026 00:00 UTC (day 10), so the unused fraction is f = 20/30.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.billing import sandbox_store
from app.billing.gateway import InvalidPromotionCode
from app.billing.proration import TIMES
from app.billing.tables import (
    IdempotencyRecord,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    PaymentMethod,
    PromotionCode,
    Subscription,
    SubscriptionItem,
    SubscriptionSchedule,
)
from tests.billing.sandbox_world import NOW, PERIOD_END, add_coupon, build_world, key

pytestmark = pytest.mark.usefixtures("db")


def change(world, price: str, quantity: int, behavior: str = "create_prorations", **options):
    return {
        "price_id": world.prices[price],
        "quantity": quantity,
        "proration_behavior": behavior,
        "schedule_at_period_end": options.pop("schedule", False),
        "trial_update_behavior": options.pop("trial", "end_trial"),
        **options,
    }


async def _pending(world) -> list[InvoiceItem]:
    return (
        await InvoiceItem.objects()
        .where((InvoiceItem.subscription == world.subscription) & InvoiceItem.invoice.is_null())
        .order_by(InvoiceItem.amount)
    )


async def _new_invoices(world) -> list[Invoice]:
    return await Invoice.objects().where(Invoice.id != world.invoice).order_by(Invoice.created)


async def test_quantity_change_with_prorations_worked_example(world):
    # 5 → 8 seats of Team ($29) at day 10 of 30: f = 20/30.
    #   credit: -round(2900 * 5 * 20/30) = -round(9666.67) = -9667  "Unused time on 5 * Team"
    #   charge:  round(2900 * 8 * 20/30) =  round(15466.67) = 15467  "Remaining time on 8 * Team"
    # Nothing is due now; the next invoice (31 Mar) = 8 * 2900 + (-9667 + 15467) = 23200 + 5800.
    args = change(world, "team_month", 8)
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert [(line.description, line.amount, line.proration) for line in preview.lines] == [
        (f"Unused time on 5 {TIMES} Team after 11 Mar 2026", -9667, True),
        (f"Remaining time on 8 {TIMES} Team after 11 Mar 2026", 15467, True),
    ]
    assert preview.lines[0].period_start == NOW
    assert preview.lines[0].period_end == PERIOD_END
    assert preview.amount_due_now == 0
    assert preview.next_invoice_date == PERIOD_END
    assert preview.next_invoice_amount == 29000
    assert not preview.scheduled_at_period_end

    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    item = await world.sub_item()
    assert (item.price, item.quantity) == (world.prices["team_month"], 8)
    pending = await _pending(world)
    assert [(i.amount, i.quantity, i.proration) for i in pending] == [
        (-9667, 5, True),
        (15467, 8, True),
    ]
    assert all(i.id.startswith("ii_") for i in pending)
    assert await _new_invoices(world) == []
    sub = await world.sub()
    assert (sub.current_period_start, sub.current_period_end) == (world_start(), PERIOD_END)


def world_start() -> datetime:
    return datetime(2026, 3, 1, tzinfo=UTC)


async def test_upgrade_with_always_invoice_is_paid_now(db, frozen_now):
    # Starter $9 → Business $99 monthly at day 10: credit -round(900 * 2/3) = -600,
    # charge round(9900 * 2/3) = 6600; invoiced now and paid with Visa 4242: 6000.
    world = await build_world(plan="starter", quantity=1)
    args = change(world, "business_month", 1, "always_invoice")
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert [line.amount for line in preview.lines] == [-600, 6600]
    assert preview.lines[0].description == "Unused time on Starter after 11 Mar 2026"
    assert preview.amount_due_now == 6000
    assert preview.next_invoice_amount == 9900

    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    [invoice] = await _new_invoices(world)
    assert invoice.id.startswith("in_")
    assert invoice.number == "ACME-0001-0005"  # continues the customer's sequence
    assert (invoice.status, invoice.total, invoice.amount_paid) == ("paid", 6000, 6000)
    assert invoice.amount_remaining == 0
    assert invoice.status_transitions_paid_at == NOW
    assert invoice.billing_reason == "subscription_update"
    lines = (
        await InvoiceLine.objects()
        .where(InvoiceLine.invoice == invoice.id)
        .order_by(InvoiceLine.position)
    )
    assert [(line.amount, line.proration) for line in lines] == [(-600, True), (6600, True)]
    assert all(line.id.startswith("il_") for line in lines)
    sub = await world.sub()
    assert (sub.status, sub.latest_invoice) == ("active", invoice.id)
    assert await _pending(world) == []


async def test_always_invoice_with_declining_card_leaves_invoice_open(db, frozen_now):
    world = await build_world(plan="starter", quantity=1)
    await PaymentMethod.update({PaymentMethod.metadata: {"sandbox_charges": "decline"}}).where(
        PaymentMethod.id == world.card
    )
    args = change(world, "business_month", 1, "always_invoice")
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    [invoice] = await _new_invoices(world)
    assert (invoice.status, invoice.amount_remaining, invoice.amount_paid) == ("open", 6000, 0)
    sub = await world.sub()
    assert sub.status == "past_due"  # Stripe's payment_behavior=allow_incomplete
    assert (await world.sub_item()).price == world.prices["business_month"]


async def test_downgrade_with_always_invoice_keeps_net_credit_pending(world):
    # 5 → 2 seats: credit -9667, charge round(2900 * 2 * 2/3) = 3867: net -5800, nothing due.
    args = change(world, "team_month", 2, "always_invoice")
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert preview.amount_due_now == 0
    assert preview.next_invoice_amount == 5800 - 5800  # 2 * 2900 + (-5800)
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    assert await _new_invoices(world) == []
    assert [i.amount for i in await _pending(world)] == [-9667, 3867]


async def test_no_proration_changes_price_from_next_period(world):
    args = change(world, "business_month", 1, "none")
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert preview.lines == []
    assert preview.amount_due_now == 0
    assert (preview.next_invoice_date, preview.next_invoice_amount) == (PERIOD_END, 9900)
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    assert (await world.sub_item()).price == world.prices["business_month"]
    assert await _pending(world) == []
    assert await _new_invoices(world) == []


async def test_monthly_to_yearly_resets_the_billing_cycle(world):
    # Team monthly 5 seats → Team yearly ($290/seat) 5 seats at day 10:
    #   credit -round(14500 * 20/30) = -9667 for the unused month,
    #   charge 5 * 29000 = 145000 for the new year [11 Mar 2026, 11 Mar 2027),
    #   due now 145000 - 9667 = 135333; next invoice 11 Mar 2027 for 145000.
    args = change(world, "team_year", 5)
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    year_end = datetime(2027, 3, 11, tzinfo=UTC)
    assert [(line.amount, line.proration) for line in preview.lines] == [
        (-9667, True),
        (145000, False),
    ]
    assert preview.lines[1].description == f"5 {TIMES} Team (at $290.00 / year)"
    assert (preview.lines[1].period_start, preview.lines[1].period_end) == (NOW, year_end)
    assert preview.amount_due_now == 135333
    assert (preview.next_invoice_date, preview.next_invoice_amount) == (year_end, 145000)

    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    sub = await world.sub()
    assert (sub.current_period_start, sub.current_period_end) == (NOW, year_end)
    assert sub.billing_cycle_anchor == NOW
    item = await world.sub_item()
    assert (item.current_period_start, item.current_period_end) == (NOW, year_end)
    [invoice] = await _new_invoices(world)
    assert (invoice.status, invoice.total, invoice.amount_paid) == ("paid", 135333, 135333)
    assert (invoice.period_start, invoice.period_end) == (NOW, year_end)


async def test_yearly_to_monthly_carries_a_large_credit(db, frozen_now):
    # Team yearly 1 seat ($290) → monthly at day 10 of a 30-day "period": credit -19333 exceeds
    # the new month (2900): the invoice totals -16433, nothing is due, the rest is carried.
    world = await build_world(interval="year", quantity=1)
    args = change(world, "team_month", 1)
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert [line.amount for line in preview.lines] == [-19333, 2900]
    assert preview.amount_due_now == 0
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    [invoice] = await _new_invoices(world)
    assert (invoice.total, invoice.amount_due, invoice.status) == (-16433, 0, "paid")
    assert [i.amount for i in await _pending(world)] == [-16433]


async def test_end_trial_invoices_the_new_plan_now(db, frozen_now):
    world = await build_world(plan="business", quantity=1, status="trialing")
    args = change(world, "team_month", 3, trial="end_trial")
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert [line.amount for line in preview.lines] == [8700]  # no proration of a free trial
    assert preview.amount_due_now == 8700
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    sub = await world.sub()
    assert (sub.status, sub.trial_end, sub.current_period_start) == ("active", NOW, NOW)
    assert sub.current_period_end == datetime(2026, 4, 11, tzinfo=UTC)
    [invoice] = await _new_invoices(world)
    assert (invoice.status, invoice.amount_paid) == ("paid", 8700)


async def test_continue_trial_only_swaps_the_plan(db, frozen_now):
    world = await build_world(plan="business", quantity=1, status="trialing")
    args = change(world, "starter_month", 1, "always_invoice", trial="continue_trial")
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert preview.lines == []
    assert preview.amount_due_now == 0
    assert (preview.next_invoice_date, preview.next_invoice_amount) == (PERIOD_END, 900)
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    sub = await world.sub()
    assert (sub.status, sub.trial_end) == ("trialing", PERIOD_END)
    assert (await world.sub_item()).price == world.prices["starter_month"]
    assert await _new_invoices(world) == []
    assert await _pending(world) == []


async def test_schedule_at_period_end(world):
    args = change(world, "starter_month", 1, schedule=True)
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert preview.scheduled_at_period_end
    assert preview.effective_date == PERIOD_END
    assert preview.lines == []
    assert preview.amount_due_now == 0
    assert preview.next_invoice_amount == 900
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    item = await world.sub_item()
    assert (item.price, item.quantity) == (world.prices["team_month"], 5)  # nothing changes now
    sub = await world.sub()
    schedule = (
        await SubscriptionSchedule.objects().where(SubscriptionSchedule.id == sub.schedule).first()
    )
    assert schedule is not None
    assert schedule.id.startswith("sub_sched_")
    assert (schedule.status, schedule.next_phase_start) == ("active", PERIOD_END)
    assert (schedule.next_phase_price, schedule.next_phase_quantity) == (
        world.prices["starter_month"],
        1,
    )

    # Choosing the current plan again releases the scheduled change.
    same = change(world, "team_month", 5)
    await world.gateway.change_subscription(world.subscription, **same, idempotency_key=key())
    assert (await world.sub()).schedule is None
    released = (
        await SubscriptionSchedule.objects().where(SubscriptionSchedule.id == schedule.id).first()
    )
    assert released.status == "released"
    assert released.released_at == NOW


async def test_promotion_code_discounts_the_next_invoice(world):
    await add_coupon("TENOFF", percent_off=10, code="Welcome10", max_redemptions=5)
    args = change(world, "team_month", 8, promotion_code=" welcome10 ")
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    # (23200 + 5800) - 10% = 29000 - 2900
    assert preview.next_invoice_amount == 26100
    assert preview.discount_description == "10% off once"
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    assert (await world.sub()).discount_coupon == "TENOFF"
    promo = await PromotionCode.objects().where(PromotionCode.id == "promo_TENOFF").first()
    assert promo.times_redeemed == 1


async def test_once_coupon_is_used_by_an_invoice_made_now(db, frozen_now):
    world = await build_world(plan="starter", quantity=1)
    await add_coupon("FIVE", amount_off=500, code="FIVE")
    args = change(world, "business_month", 1, "always_invoice", promotion_code="five")
    preview = await world.gateway.preview_subscription_change(world.subscription, **args)
    assert (preview.amount_due_now, preview.next_invoice_amount) == (5500, 9900)
    await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    [invoice] = await _new_invoices(world)
    assert (invoice.subtotal, invoice.total, invoice.amount_paid) == (6000, 5500, 5500)
    assert (await world.sub()).discount_coupon is None


@pytest.mark.parametrize(
    ("code", "promo"),
    [
        ("NOPE", {}),
        ("OLD", {"expires_at": datetime(2026, 3, 1, tzinfo=UTC)}),
        ("OFF", {"active": False}),
        ("USED", {"max_redemptions": 2, "times_redeemed": 2}),
    ],
)
async def test_invalid_promotion_codes(world, code, promo):
    if promo:
        await add_coupon(f"C{code}", percent_off=10, code=code, **promo)
    args = change(world, "team_month", 8, promotion_code=code)
    with pytest.raises(InvalidPromotionCode) as raised:
        await world.gateway.preview_subscription_change(world.subscription, **args)
    assert raised.value.message == "That promotion code is not valid."
    assert raised.value.field == "promotion_code"
    with pytest.raises(InvalidPromotionCode):
        await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    assert (await world.sub_item()).quantity == 5


async def test_a_failure_midway_leaves_nothing_written(world, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(sandbox_store, "create_invoice", broken)
    args = change(world, "team_year", 5)
    with pytest.raises(RuntimeError):
        await world.gateway.change_subscription(world.subscription, **args, idempotency_key=key())
    item = await world.sub_item()
    assert (item.price, item.quantity) == (world.prices["team_month"], 5)
    sub = await world.sub()
    assert (sub.current_period_start, sub.current_period_end) == (world_start(), PERIOD_END)
    assert await _new_invoices(world) == []
    assert await _pending(world) == []
    assert await IdempotencyRecord.count() == 0


async def test_changes_refused(world):
    from app.billing.gateway import GatewayError

    with pytest.raises(GatewayError) as raised:
        await world.gateway.change_subscription(
            world.subscription, **change(world, "team_month", 0), idempotency_key=key()
        )
    assert raised.value.field == "quantity"
    await Subscription.update({Subscription.status: "canceled"}).where(
        Subscription.id == world.subscription
    )
    with pytest.raises(GatewayError):
        await world.gateway.preview_subscription_change(
            world.subscription, **change(world, "team_month", 6)
        )
    assert await SubscriptionItem.count() == 1
