"""The customer's subscriptions as every page shows them, with the one rule for "next charge" and
"access ends" (discount and scheduled plan included) that the overview and the subscriptions page
share."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from app import clock
from app.billing.queries import sql
from app.billing.tables import (
    Coupon,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    SubscriptionSchedule,
)

# Subscriptions that still give the customer something: they count for sign-in and are shown.
ACTIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "paused")
# Canceled subscriptions stay on the pages this long after they ended.
RECENTLY_ENDED = timedelta(days=90)
# Schedules whose next phase has not started yet.
PENDING_SCHEDULE = ("not_started", "active")


class PlanItem(msgspec.Struct, frozen=True, kw_only=True):
    """One subscription item with its price and product."""

    id: str
    price_id: str
    product_id: str
    product_name: str
    unit_label: str | None
    unit_amount: int | None  # None for prices without a flat amount (tiers, custom)
    currency: str
    interval: str | None
    interval_count: int
    quantity: int
    usage_type: str | None = None  # licensed | metered

    @property
    def amount(self) -> int:
        return (self.unit_amount or 0) * self.quantity


class PendingChange(msgspec.Struct, frozen=True, kw_only=True):
    """The scheduled next phase: a plan that starts later (a downgrade at the period end)."""

    starts: datetime
    price_id: str
    product_name: str
    unit_label: str | None
    unit_amount: int | None
    currency: str
    interval: str | None
    interval_count: int
    quantity: int

    @property
    def amount(self) -> int:
        return (self.unit_amount or 0) * self.quantity


class Discount(msgspec.Struct, frozen=True, kw_only=True):
    """The coupon on a subscription (one discount per subscription in the portal's model)."""

    coupon_id: str
    name: str | None
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    valid: bool = True

    @classmethod
    def of(cls, coupon: Coupon) -> Discount:
        return cls(coupon_id=coupon.id, **{name: getattr(coupon, name) for name in DISCOUNT_FIELDS})

    def apply(self, amount: int, currency: str) -> int:
        if self.percent_off:
            return amount - round(amount * self.percent_off / 100)
        if self.amount_off and (self.currency or "").lower() == currency.lower():
            return max(0, amount - self.amount_off)
        return amount


DISCOUNT_FIELDS = tuple(name for name in Discount.__struct_fields__ if name != "coupon_id")


class NextCharge(msgspec.Struct, frozen=True, kw_only=True):
    amount: int
    currency: str
    date: datetime


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription as every page shows it; ``next_charge`` and ``access_ends`` are the one rule
    for both (the overview and the subscriptions page)."""

    id: str
    status: str
    currency: str
    collection_method: str
    created: datetime
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    trial_end: datetime | None
    pause_collection_behavior: str | None
    pause_collection_resumes_at: datetime | None
    default_payment_method: str | None = None
    schedule: str | None = None
    items: list[PlanItem]
    pending: PendingChange | None = None
    discount: Discount | None = None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_canceling(self) -> bool:
        return self.is_active and (self.cancel_at_period_end or self.cancel_at is not None)

    @property
    def is_paused(self) -> bool:
        """Payments paused (``pause_collection``), as opposed to Stripe's ``paused`` status."""
        return self.pause_collection_behavior is not None

    @property
    def title(self) -> str:
        return ", ".join(item.product_name for item in self.items)

    @property
    def access_ends(self) -> datetime | None:
        """When access stops: the scheduled end of a canceling subscription, or when it ended."""
        if not self.is_active:
            return self.ended_at or self.canceled_at or self.current_period_end
        if self.cancel_at is not None:
            return self.cancel_at
        if self.cancel_at_period_end:
            return self.current_period_end
        return None

    @property
    def next_charge(self) -> NextCharge | None:
        """The next renewal: None when the subscription will not renew (ended, canceling, paused);
        the scheduled plan's amount when it starts by then; the discount taken off."""
        if not self.is_active or self.status == "paused" or self.is_paused:
            return None
        if self.is_canceling or self.canceled_at:
            return None
        date = self.current_period_end
        if self.pending is not None and self.pending.starts <= date:
            amount = self.pending.amount
        else:
            amount = sum(item.amount for item in self.items)
        if self.discount is not None:
            amount = self.discount.apply(amount, self.currency)
        return NextCharge(amount=amount, currency=self.currency, date=date)


_SUBSCRIPTION_COLUMNS = tuple(
    getattr(Subscription, name)
    for name in SubscriptionView.__struct_fields__
    if name not in ("items", "pending", "discount")
)
_SUBSCRIPTIONS_SQL = (
    f"SELECT {sql.selected((*_SUBSCRIPTION_COLUMNS, Subscription.discount_coupon))}"  # noqa: S608 (identifiers only; values are parameters)
    f' FROM "{Subscription._meta.tablename}" WHERE '
)
# The customer's subscriptions that still give something, and those that ended recently.
_SHOWN = (
    '"customer" = {} AND ("status" IN ('
    + sql.placeholders(len(ACTIVE_STATUSES))
    + ') OR ("status" = {} AND ("ended_at" >= {} OR ("ended_at" IS NULL AND "canceled_at" >= {}))))'
)
_ONE = '"customer" = {} AND "id" = {}'


# The subscription items with their price and product: one query, its SQL built once (see
# ``sql``); the same columns as a Piccolo select of ``SubscriptionItem.price.product.…``.
_ITEMS_SQL = (
    "SELECT "  # noqa: S608 (identifiers only; values are parameters)
    + sql.selected(
        (SubscriptionItem.id, SubscriptionItem.subscription, SubscriptionItem.quantity), "si."
    )
    + ", "
    + sql.selected(
        (
            Price.id.as_alias("price_id"),
            Price.currency,
            Price.unit_amount,
            Price.recurring_interval.as_alias("interval"),
            Price.recurring_interval_count.as_alias("interval_count"),
            Price.recurring_usage_type.as_alias("usage_type"),
        ),
        "p.",
    )
    + ", "
    + sql.selected(
        (
            Product.id.as_alias("product_id"),
            Product.name.as_alias("product_name"),
            Product.unit_label,
        ),
        "pr.",
    )
    + f' FROM "{SubscriptionItem._meta.tablename}" si'
    + f' LEFT JOIN "{Price._meta.tablename}" p ON p."id" = si."price"'
    + f' LEFT JOIN "{Product._meta.tablename}" pr ON pr."id" = p."product"'
    + ' WHERE si."subscription" IN ({ids})'
)
_PENDING_PRICE_COLUMNS = (
    Price.id,
    Price.currency,
    Price.unit_amount,
    Price.recurring_interval.as_alias("interval"),
    Price.recurring_interval_count.as_alias("interval_count"),
    Price.product.name.as_alias("product_name"),
    Price.product.unit_label.as_alias("unit_label"),
)


async def _items(subscription_ids: list[str]) -> dict[str, list[PlanItem]]:
    if not subscription_ids:
        return {}
    query = _ITEMS_SQL.replace("{ids}", sql.placeholders(len(subscription_ids)))
    rows = await SubscriptionItem.raw(query, *subscription_ids)
    items: dict[str, list[PlanItem]] = {}
    for row in sorted(rows, key=lambda r: (r["product_name"], r["id"])):
        items.setdefault(row.pop("subscription"), []).append(PlanItem(**row))
    return items


async def _pending_changes(schedule_ids: list[str]) -> dict[str, PendingChange]:
    """The next phase of each subscription's pending schedule (``Subscription.schedule``, as
    Stripe links them), by subscription id: two queries, none without schedules."""
    if not schedule_ids:
        return {}
    schedules = await SubscriptionSchedule.select(
        SubscriptionSchedule.subscription,
        SubscriptionSchedule.next_phase_start.as_alias("starts"),
        SubscriptionSchedule.next_phase_price.as_alias("price_id"),
        SubscriptionSchedule.next_phase_quantity.as_alias("quantity"),
    ).where(
        SubscriptionSchedule.id.is_in(schedule_ids)
        & SubscriptionSchedule.status.is_in(list(PENDING_SCHEDULE))
    )
    if not schedules:
        return {}
    prices = {
        row.pop("id"): row
        for row in await Price.select(*_PENDING_PRICE_COLUMNS).where(
            Price.id.is_in([s["price_id"] for s in schedules])
        )
    }
    pending: dict[str, PendingChange] = {}
    for schedule in schedules:
        subscription_id = schedule.pop("subscription")
        if schedule["price_id"] in prices:
            pending[subscription_id] = PendingChange(**schedule, **prices[schedule["price_id"]])
    return pending


async def _discounts(coupon_ids: list[str]) -> dict[str, Discount]:
    if not coupon_ids:
        return {}
    coupons = await Coupon.objects().where(Coupon.id.is_in(coupon_ids))
    return {coupon.id: Discount.of(coupon) for coupon in coupons}


def _present(rows: list[dict[str, Any]], column: str) -> list[str]:
    return sorted({row[column] for row in rows if row[column]})


async def _load(condition: str, *args: Any) -> list[SubscriptionView]:
    """Subscriptions matching ``condition`` (SQL with ``{}`` placeholders for ``args``) with
    their items, scheduled next phases and discounts: two queries, and up to three more only
    when some have a schedule or a discount, whatever the number of subscriptions."""
    subs = await Subscription.raw(_SUBSCRIPTIONS_SQL + condition, *args)
    if not subs:
        return []
    items = await _items([s["id"] for s in subs])
    pending = await _pending_changes(_present(subs, "schedule"))
    discounts = await _discounts(_present(subs, "discount_coupon"))
    views = []
    for sub in subs:
        coupon = sub.pop("discount_coupon")
        views.append(
            SubscriptionView(
                **sub,
                items=items.get(sub["id"], []),
                pending=pending.get(sub["id"]),
                discount=discounts.get(coupon or ""),
            )
        )
    return views


async def subscriptions(customer_id: str, *, now: datetime | None = None) -> list[SubscriptionView]:
    """The customer's subscriptions that still give something (ACTIVE_STATUSES) and those that
    ended in the last 90 days; active first, newest first within each group."""
    cutoff = (now or clock.now()) - RECENTLY_ENDED
    views = await _load(_SHOWN, customer_id, *ACTIVE_STATUSES, "canceled", cutoff, cutoff)
    views.sort(key=lambda v: v.created, reverse=True)
    views.sort(key=lambda v: not v.is_active)
    return views


async def subscription(customer_id: str, subscription_id: str) -> SubscriptionView | None:
    """One of the customer's subscriptions (any status); None for an unknown id or another
    customer's."""
    if not subscription_id or len(subscription_id) > 64:
        return None
    found = await _load(_ONE, customer_id, subscription_id)
    return found[0] if found else None
