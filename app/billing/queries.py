"""Read-side queries for the pages. They read the local mirror only and never call Stripe.

Everything a page needs comes back as plain frozen structs, fetched in a fixed, small number of
queries (no query per subscription, item or invoice).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from piccolo.query import WhereRaw

from app import clock
from app.billing.tables import (
    Customer,
    Invoice,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)

# Subscriptions that still give the customer something: they count for sign-in and are shown.
ACTIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "paused")
# Canceled subscriptions stay on the overview this long after they ended.
RECENTLY_ENDED = timedelta(days=90)
RECENT_INVOICES = 5


# --- sign-in: which customer an email address opens -------------------------------------------


async def _candidates(email: str) -> list[tuple[Customer, list[str]]]:
    """Every customer with this email (case-insensitive), newest first, with the statuses of
    their active subscriptions (newest first). Two queries."""
    address = email.strip().lower()
    if not address:
        return []
    customers = (
        await Customer.objects()
        .where(WhereRaw("lower(email) = {}", address))
        .order_by(Customer.created, Customer.id, ascending=False)
    )
    if not customers:
        return []
    rows = (
        await Subscription.select(Subscription.customer, Subscription.status)
        .where(
            Subscription.customer.is_in([c.id for c in customers])
            & Subscription.status.is_in(list(ACTIVE_STATUSES))
        )
        .order_by(Subscription.created, ascending=False)
    )
    statuses: dict[str, list[str]] = {}
    for row in rows:
        statuses.setdefault(row["customer"], []).append(row["status"])
    return [(customer, statuses.get(customer.id, [])) for customer in customers]


def _pick(candidates: list[tuple[Customer, list[str]]]) -> Customer | None:
    live = [(customer, statuses) for customer, statuses in candidates if not customer.deleted]
    for customer, statuses in live:
        if statuses:
            return customer
    return live[0][0] if live else None


async def choose_customer(email: str) -> Customer | None:
    """The customer an email signs in as: among non-deleted customers with that email, the most
    recently created one with a subscription in ACTIVE_STATUSES; if none has one, the most recently
    created one; None when no customer has that email."""
    return _pick(await _candidates(email))


async def explain_choice(email: str) -> list[tuple[Customer, str]]:
    """Every customer with that email (deleted ones included), newest first, each with a short
    reason why it is or is not the one the email signs in as."""
    candidates = await _candidates(email)
    chosen = _pick(candidates)
    any_active = any(statuses and not c.deleted for c, statuses in candidates)
    explained: list[tuple[Customer, str]] = []
    for customer, statuses in candidates:
        listed = ", ".join(dict.fromkeys(statuses))
        if customer.deleted:
            reason = "Not chosen: deleted customer."
        elif chosen is not None and customer.id == chosen.id:
            if statuses:
                reason = f"Chosen: the newest customer with an active subscription ({listed})."
            else:
                reason = "Chosen: no customer has an active subscription, so the newest one."
        elif statuses:
            reason = f"Not chosen: has an active subscription ({listed}), but a newer one does too."
        elif any_active:
            reason = "Not chosen: no active subscription, and another customer has one."
        else:
            reason = "Not chosen: a newer customer has the same email."
        explained.append((customer, reason))
    return explained


# --- overview ----------------------------------------------------------------------------------


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

    @property
    def amount(self) -> int:
        return (self.unit_amount or 0) * self.quantity


class NextCharge(msgspec.Struct, frozen=True, kw_only=True):
    amount: int
    currency: str
    date: datetime


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str
    currency: str
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
    default_payment_method: str | None
    items: list[PlanItem]
    next_charge: NextCharge | None
    # When access stops: the scheduled end of a canceling subscription, or when it ended.
    access_ends: datetime | None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_canceling(self) -> bool:
        return self.is_active and self.access_ends is not None


class CardView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


class InvoiceRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: str | None
    status: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    description: str | None
    created: datetime
    due_date: datetime | None
    paid_at: datetime | None
    period_start: datetime | None
    period_end: datetime | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer
    subscriptions: list[SubscriptionView]
    default_payment_method: CardView | None
    recent_invoices: list[InvoiceRow]


class InvoicePage(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[InvoiceRow]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _next_charge(sub: dict[str, Any], items: list[PlanItem]) -> NextCharge | None:
    """Sum of the items at the next renewal, or None when the subscription will not renew."""
    if sub["status"] not in ACTIVE_STATUSES or sub["status"] == "paused":
        return None
    if sub["cancel_at_period_end"] or sub["cancel_at"] is not None or sub["canceled_at"]:
        return None
    if sub["pause_collection_behavior"]:
        return None
    return NextCharge(
        amount=sum(item.amount for item in items),
        currency=sub["currency"],
        date=sub["current_period_end"],
    )


def _access_ends(sub: dict[str, Any]) -> datetime | None:
    if sub["status"] not in ACTIVE_STATUSES:
        return sub["ended_at"] or sub["canceled_at"] or sub["current_period_end"]
    if sub["cancel_at"] is not None:
        return sub["cancel_at"]
    if sub["cancel_at_period_end"]:
        return sub["current_period_end"]
    return None


_INVOICE_COLUMNS = (
    Invoice.id,
    Invoice.number,
    Invoice.status,
    Invoice.currency,
    Invoice.total,
    Invoice.amount_due,
    Invoice.amount_paid,
    Invoice.amount_remaining,
    Invoice.description,
    Invoice.created,
    Invoice.due_date,
    Invoice.status_transitions_paid_at.as_alias("paid_at"),
    Invoice.period_start,
    Invoice.period_end,
    Invoice.hosted_invoice_url,
    Invoice.invoice_pdf,
)


def _customer_invoices(customer_id: str):
    return (
        Invoice.select(*_INVOICE_COLUMNS)
        .where((Invoice.customer == customer_id) & (Invoice.status != "draft"))
        .order_by(Invoice.created, Invoice.id, ascending=False)
    )


_SUBSCRIPTION_COLUMNS = tuple(
    getattr(Subscription, name)
    for name in SubscriptionView.__struct_fields__
    if name not in ("items", "next_charge", "access_ends")
)


async def _subscriptions(customer_id: str, now: datetime) -> list[SubscriptionView]:
    """Active subscriptions and those that ended in the last 90 days: two queries."""
    cutoff = now - RECENTLY_ENDED
    ended_recently = (Subscription.status == "canceled") & (
        (Subscription.ended_at >= cutoff)
        | (Subscription.ended_at.is_null() & (Subscription.canceled_at >= cutoff))
    )
    subs = await Subscription.select(*_SUBSCRIPTION_COLUMNS).where(
        (Subscription.customer == customer_id)
        & (Subscription.status.is_in(list(ACTIVE_STATUSES)) | ended_recently)
    )
    if not subs:
        return []
    price = SubscriptionItem.price
    rows = await SubscriptionItem.select(
        SubscriptionItem.id,
        SubscriptionItem.subscription,
        SubscriptionItem.quantity,
        price.id.as_alias("price_id"),
        price.currency.as_alias("currency"),
        price.unit_amount.as_alias("unit_amount"),
        price.recurring_interval.as_alias("interval"),
        price.recurring_interval_count.as_alias("interval_count"),
        price.product.id.as_alias("product_id"),
        price.product.name.as_alias("product_name"),
        price.product.unit_label.as_alias("unit_label"),
    ).where(SubscriptionItem.subscription.is_in([s["id"] for s in subs]))
    items: dict[str, list[PlanItem]] = {}
    for row in sorted(rows, key=lambda r: (r["product_name"], r["id"])):
        subscription_id = row.pop("subscription")
        items.setdefault(subscription_id, []).append(PlanItem(**row))
    views = [
        SubscriptionView(
            **sub,
            items=items.get(sub["id"], []),
            next_charge=_next_charge(sub, items.get(sub["id"], [])),
            access_ends=_access_ends(sub),
        )
        for sub in subs
    ]
    # Active first, newest first within each group.
    views.sort(key=lambda v: v.created, reverse=True)
    views.sort(key=lambda v: not v.is_active)
    return views


async def _default_card(customer: Customer) -> CardView | None:
    pm_id = customer.invoice_settings_default_payment_method
    if not pm_id:
        return None
    row = (
        await PaymentMethod.select(
            PaymentMethod.id,
            PaymentMethod.type,
            PaymentMethod.card_brand.as_alias("brand"),
            PaymentMethod.card_last4.as_alias("last4"),
            PaymentMethod.card_exp_month.as_alias("exp_month"),
            PaymentMethod.card_exp_year.as_alias("exp_year"),
        )
        .where((PaymentMethod.id == pm_id) & (PaymentMethod.customer == customer.id))
        .first()
    )
    return None if row is None else CardView(**row)


async def overview(customer_id: str, *, now: datetime | None = None) -> Overview | None:
    """What the portal's overview page shows, in at most five queries; None for an unknown or
    deleted customer."""
    customer = (
        await Customer.objects()
        .where((Customer.id == customer_id) & Customer.deleted.eq(False))
        .first()
    )
    if customer is None:
        return None
    subscriptions = await _subscriptions(customer_id, now or clock.now())
    card = await _default_card(customer)
    invoices = await _customer_invoices(customer_id).limit(RECENT_INVOICES)
    return Overview(
        customer=customer,
        subscriptions=subscriptions,
        default_payment_method=card,
        recent_invoices=[InvoiceRow(**row) for row in invoices],
    )


async def invoices_page(customer_id: str, page: int, per_page: int = 20) -> InvoicePage:
    """One page of the customer's invoices (drafts excluded), newest first; pages start at 1."""
    page = max(page, 1)
    per_page = max(per_page, 1)
    rows = await _customer_invoices(customer_id).limit(per_page + 1).offset((page - 1) * per_page)
    return InvoicePage(
        rows=[InvoiceRow(**row) for row in rows[:per_page]],
        page=page,
        per_page=per_page,
        has_next=len(rows) > per_page,
    )
