"""Plan and quantity changes in the sandbox: one planner for the preview and the change itself, so
what the customer confirms is what happens.

Stripe's semantics (single-item subscriptions; ``t`` = now, ``[start, end)`` = current period):

* Same interval, ``create_prorations``: credit "Unused time on <old>" and charge "Remaining time on
  <new>" (see ``proration``) become pending invoice items for the next invoice. Nothing is due now;
  the next invoice is the new recurring amount plus the prorations (and any other pending items).
* Same interval, ``always_invoice``: the same lines (plus the subscription's pending items) are
  invoiced now and charged to the default payment method. If they net to a credit, nothing is
  invoiced: the lines stay pending and reduce the next invoice (Stripe would use the balance).
* Same interval, ``none``: no lines; the new price is billed from the next period.
* Interval change (month ↔ year): the billing cycle resets to now. Unused old time is credited
  (unless ``none``) and the full new period [now, now + interval) is invoiced now.
* Trialing: ``end_trial`` ends the trial now, the subscription becomes active and the new plan is
  invoiced for a fresh period; ``continue_trial`` only swaps the plan (trials are never prorated).
* ``schedule_at_period_end``: nothing changes now; a subscription schedule starts the new plan at
  the current period end (the portal's downgrades).
* A promotion code puts its coupon on the subscription; the coupon discounts the invoice made now
  (a ``once`` coupon is then used up) or else the next one.
* An invoice made now that cannot be paid (no payment method, declined card) stays open and the
  subscription becomes ``past_due`` (Stripe's ``payment_behavior=allow_incomplete``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from piccolo.query import WhereRaw

from app.billing import proration
from app.billing import sandbox_store as store
from app.billing.gateway import (
    ChangePreview,
    GatewayError,
    InvalidPromotionCode,
    ProrationBehavior,
    TrialUpdateBehavior,
)
from app.billing.tables import (
    Coupon,
    InvoiceItem,
    Price,
    Product,
    PromotionCode,
    Subscription,
    SubscriptionItem,
    SubscriptionSchedule,
)


@dataclass(frozen=True)
class ChangeRequest:
    price_id: str
    quantity: int
    proration_behavior: ProrationBehavior
    schedule_at_period_end: bool
    trial_update_behavior: TrialUpdateBehavior
    promotion_code: str | None = None


@dataclass
class Context:
    sub: Subscription
    item: SubscriptionItem
    old_price: Price
    old_product: Product
    new_price: Price
    new_product: Product
    coupon: Coupon | None  # the discount after the change
    promotion: PromotionCode | None
    pending: list[InvoiceItem]


@dataclass
class Plan:
    kind: str  # unchanged | scheduled | continue_trial | end_trial | reset | prorate | none
    charges: list[store.Charge] = field(default_factory=list)
    invoice_now: bool = False  # charges (+ pending items) are invoiced now, else left pending
    amount_due_now: int = 0
    new_period: tuple[datetime, datetime] | None = None
    next_invoice_date: datetime | None = None
    next_invoice_amount: int | None = None
    effective_date: datetime | None = None
    coupon_used_up: bool = False


# --- loading and checks --------------------------------------------------------------------------


async def promotion(code: str, currency: str, now: datetime) -> tuple[PromotionCode, Coupon]:
    """An active, unexpired promotion code (case-insensitive) under its redemption limit, with a
    valid coupon usable in this currency; else ``InvalidPromotionCode``."""
    invalid = InvalidPromotionCode("That promotion code is not valid.")
    found = (
        await PromotionCode.objects()
        .where(WhereRaw("lower(code) = {}", code.strip().lower()) & PromotionCode.active.eq(True))
        .order_by(PromotionCode.created, ascending=False)
    )
    for promo in found:
        if promo.expires_at is not None and promo.expires_at <= now:
            continue
        if promo.max_redemptions is not None and promo.times_redeemed >= promo.max_redemptions:
            continue
        coupon = await store.coupon(promo.coupon)
        if coupon is None or not coupon.valid:
            continue
        if coupon.amount_off and (coupon.currency or "").lower() != currency.lower():
            continue
        return promo, coupon
    raise invalid


async def load(
    subscription_id: str, request: ChangeRequest, now: datetime, *, lock: bool
) -> Context:
    sub = await store.subscription(subscription_id, lock=lock)
    if sub.status in store.ENDED:
        raise GatewayError("This subscription has ended, so it can't be changed.")
    items = await SubscriptionItem.objects().where(SubscriptionItem.subscription == sub.id)
    if len(items) != 1:
        raise GatewayError("This subscription can only be canceled, not changed.")
    item = items[0]
    if request.quantity < 1:
        raise GatewayError("Enter a quantity of at least 1.", field="quantity")
    old_price, old_product = await store.price_and_product(item.price)
    new_price, new_product = await store.price_and_product(request.price_id)
    if new_price.id != old_price.id and (
        not new_price.active
        or new_price.type != "recurring"
        or new_price.currency != sub.currency
        or new_price.unit_amount is None
    ):
        raise GatewayError("That plan is not available.", field="price")
    coupon = await store.coupon(sub.discount_coupon)
    promo = None
    if request.promotion_code and request.promotion_code.strip():
        promo, coupon = await promotion(request.promotion_code, sub.currency, now)
    pending = await store.pending_items(sub.customer, sub.id)
    return Context(
        sub, item, old_price, old_product, new_price, new_product, coupon, promo, pending
    )


# --- planning (pure) -----------------------------------------------------------------------------


def _after_discount(subtotal: int, coupon: Coupon | None) -> tuple[int, int]:
    """(total, discount) of an invoice with this subtotal."""
    if coupon is None:
        return subtotal, 0
    off = proration.discount_amount(
        subtotal, percent_off=coupon.percent_off, amount_off=coupon.amount_off
    )
    return subtotal - off, off


def _interval(price: Price) -> tuple[str, int]:
    return price.recurring_interval or "month", price.recurring_interval_count or 1


def plan(ctx: Context, request: ChangeRequest, now: datetime) -> Plan:
    sub, item = ctx.sub, ctx.item
    start, end = sub.current_period_start, sub.current_period_end
    old = (ctx.old_product.name, ctx.old_price.unit_amount or 0, item.quantity)
    new = (ctx.new_product.name, ctx.new_price.unit_amount or 0, request.quantity)
    new_recurring = new[1] * new[2]
    pending = sum(p.amount for p in ctx.pending)
    changed = (ctx.old_price.id, item.quantity) != (ctx.new_price.id, request.quantity)
    renews = not (sub.cancel_at_period_end or sub.cancel_at is not None)

    def later(kind: str, recurring: int, extra: int = 0, **values) -> Plan:
        total, _ = _after_discount(recurring + pending + extra, ctx.coupon)
        return Plan(
            kind,
            next_invoice_date=end if renews else None,
            next_invoice_amount=max(total, 0) if renews else None,
            **values,
        )

    if not changed:
        return later("unchanged", old[1] * old[2])
    if request.schedule_at_period_end:
        return later("scheduled", new_recurring, effective_date=end)
    if sub.status == "trialing" and request.trial_update_behavior == "continue_trial":
        return later("continue_trial", new_recurring, effective_date=now)

    interval, count = _interval(ctx.new_price)
    reset = sub.status == "trialing" or _interval(ctx.old_price) != (interval, count)
    behavior = request.proration_behavior
    if not reset:
        lines: list[store.Charge] = []
        if behavior != "none":
            made = proration.proration_lines(old=old, new=new, start=start, end=end, at=now)
            if made:
                lines = [
                    store.Charge(made[0], ctx.old_price.id, item.quantity),
                    store.Charge(made[1], ctx.new_price.id, request.quantity),
                ]
        net = sum(c.line.amount for c in lines) + pending
        if behavior != "always_invoice" or not lines or net < 0:
            kind = "none" if behavior == "none" else "prorate"
            extra = sum(c.line.amount for c in lines)
            return later(kind, new_recurring, extra, charges=lines, effective_date=now)
        total, off = _after_discount(net, ctx.coupon)
        used_up = bool(ctx.coupon and off and ctx.coupon.duration == "once")
        next_total, _ = _after_discount(new_recurring, None if used_up else ctx.coupon)
        return Plan(
            "prorate",
            charges=lines,
            invoice_now=True,
            amount_due_now=max(total, 0),
            next_invoice_date=end if renews else None,
            next_invoice_amount=max(next_total, 0) if renews else None,
            effective_date=now,
            coupon_used_up=used_up,
        )

    # The billing cycle resets: a trial ends, or the interval changes.
    period = (now, proration.add_interval(now, interval, count))
    charges = []
    if sub.status != "trialing" and behavior != "none":
        charges = [
            store.Charge(line, ctx.old_price.id, item.quantity)
            for line in proration.proration_lines(old=old, new=None, start=start, end=end, at=now)
        ]
    full = proration.period_line(
        product_name=ctx.new_product.name,
        unit_amount=new[1],
        quantity=new[2],
        currency=sub.currency,
        interval=interval,
        start=period[0],
        end=period[1],
    )
    charges.append(store.Charge(full, ctx.new_price.id, request.quantity))
    total, off = _after_discount(sum(c.line.amount for c in charges) + pending, ctx.coupon)
    used_up = bool(ctx.coupon and off and ctx.coupon.duration == "once")
    carried = min(total, 0)  # a credit larger than the new period waits for the next invoice
    next_total, _ = _after_discount(new_recurring + carried, None if used_up else ctx.coupon)
    return Plan(
        "end_trial" if sub.status == "trialing" else "reset",
        charges=charges,
        invoice_now=True,
        amount_due_now=max(total, 0),
        new_period=period,
        next_invoice_date=period[1] if renews else None,
        next_invoice_amount=max(next_total, 0) if renews else None,
        effective_date=now,
        coupon_used_up=used_up,
    )


def describe(coupon: Coupon) -> str:
    return coupon.name or proration.describe_coupon(
        name=None,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        duration=coupon.duration,
        months=coupon.duration_in_months,
    )


def preview(ctx: Context, result: Plan) -> ChangePreview:
    return ChangePreview(
        currency=ctx.sub.currency,
        lines=[c.line for c in result.charges],
        amount_due_now=result.amount_due_now,
        next_invoice_date=result.next_invoice_date,
        next_invoice_amount=result.next_invoice_amount,
        scheduled_at_period_end=result.kind == "scheduled",
        effective_date=result.effective_date,
        discount_description=describe(ctx.coupon) if ctx.coupon is not None else None,
    )


# --- applying ------------------------------------------------------------------------------------


async def release_schedule(sub: Subscription, now: datetime) -> None:
    """Release the subscription's pending schedule (Stripe: the subscription keeps its current
    plan and the scheduled phase never starts)."""
    if sub.schedule:
        await SubscriptionSchedule.update(
            {SubscriptionSchedule.status: "released", SubscriptionSchedule.released_at: now}
        ).where(
            (SubscriptionSchedule.id == sub.schedule)
            & SubscriptionSchedule.status.is_in(["not_started", "active"])
        )
        sub.schedule = None


async def apply(ctx: Context, request: ChangeRequest, result: Plan, now: datetime) -> None:
    sub, item = ctx.sub, ctx.item
    if ctx.promotion is not None and ctx.coupon is not None:
        sub.discount_coupon = ctx.coupon.id
        await PromotionCode.update(
            {PromotionCode.times_redeemed: PromotionCode.times_redeemed + 1}
        ).where(PromotionCode.id == ctx.promotion.id)
    await release_schedule(sub, now)
    if result.kind == "scheduled":
        schedule = SubscriptionSchedule(
            id=store.new_id("sub_sched"),
            customer=sub.customer,
            subscription=sub.id,
            status="active",
            end_behavior="release",
            next_phase_start=sub.current_period_end,
            next_phase_price=ctx.new_price.id,
            next_phase_quantity=request.quantity,
            created=now,
        )
        await SubscriptionSchedule.insert(schedule)
        sub.schedule = schedule.id
    elif result.kind != "unchanged":
        item.price = ctx.new_price.id
        item.quantity = request.quantity
        if result.new_period is not None:
            sub.current_period_start, sub.current_period_end = result.new_period
            item.current_period_start, item.current_period_end = result.new_period
            sub.billing_cycle_anchor = now
            if sub.cancel_at_period_end:
                sub.cancel_at = sub.current_period_end
        if result.kind == "end_trial":
            sub.trial_end = now
            sub.status = "active"
        await item.save()
        if result.invoice_now:
            customer = await store.customer(sub.customer)
            invoice, paid = await store.create_invoice(
                customer,
                sub,
                result.charges,
                now,
                billing_reason="subscription_update",
                coupon_row=ctx.coupon,
                items=ctx.pending,
            )
            sub.latest_invoice = invoice.id
            if not paid:
                sub.status = "past_due"
            if result.coupon_used_up:
                sub.discount_coupon = None
        elif result.charges:
            await store.add_pending_items(sub.customer, sub.id, sub.currency, result.charges, now)
    await sub.save()
