"""Subscription rules for the portal: what each subscription shows, which actions it offers and
why not, the plan choices a configuration allows, and the actions themselves.

- Reads come from the local mirror; every write goes through the ``BillingGateway``.
- Every object is looked up through the signed-in customer's id (``find``): another customer's
  subscription is simply not found.
- Every action records one audit event, even when the same form is submitted twice: the event
  carries the action's idempotency key, and a replay of a key that already has its event records
  nothing more (``replayed``).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time
from typing import Any

import msgspec
from piccolo.columns.combination import Where

from app import clock, db
from app.audit import service as audit
from app.audit.tables import AuditEvent
from app.billing.gateway import BillingGateway, ChangePreview
from app.billing.queries import ACTIVE_STATUSES, RECENTLY_ENDED, NextCharge, PlanItem
from app.billing.tables import Coupon, Price, Subscription, SubscriptionItem, SubscriptionSchedule
from app.configuration.features import (
    CANCELLATION_REASONS,
    Features,
    ScheduleCondition,
    SubscriptionUpdate,
)
from app.i18n import gettext as _
from app.i18n import ngettext
from app.portal.subscriptions.forms import CancelForm, ChangeForm, PauseForm
from app.web import formatting

# Only these can change plan (Stripe's portal rule).
UPDATABLE_STATUSES = ("active", "trialing", "past_due")
PAUSABLE_STATUSES = ("active", "trialing")
MAX_PRODUCTS = 10
PAUSE_MONTHS = 3
PENDING_SCHEDULE = ("not_started", "active")
QUANTITY_RE = re.compile(r"^[0-9]{1,6}$")
# Rough lengths, only to tell a shorter billing interval from a longer one.
INTERVAL_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}

CHANGED = "subscription.plan_changed"
CANCELED = "subscription.canceled"
RENEWED = "subscription.renewed"
PAUSED = "subscription.paused"
RESUMED = "subscription.resumed"
OFFER_SHOWN = "subscription.retention_offered"
OFFER_ACCEPTED = "subscription.retention_accepted"


def reason_labels() -> dict[str, str]:
    """Stripe's eight cancellation reasons with Stripe's labels."""
    return {
        "too_expensive": _("It's too expensive"),
        "missing_features": _("I need more features"),
        "switched_service": _("I found an alternative"),
        "unused": _("I no longer need it"),
        "customer_service": _("Customer service was less than expected"),
        "too_complex": _("Ease of use was less than expected"),
        "low_quality": _("Quality was less than expected"),
        "other": _("Other reason"),
    }


# --- what a subscription looks like ------------------------------------------------------------


class Item(PlanItem, frozen=True, kw_only=True):
    usage_type: str | None = None


class PendingChange(msgspec.Struct, frozen=True, kw_only=True):
    """A change scheduled for a later date (a downgrade at the period end)."""

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
    coupon_id: str
    name: str | None
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    valid: bool = True

    def apply(self, amount: int, currency: str) -> int:
        if self.percent_off:
            return amount - round(amount * self.percent_off / 100)
        if self.amount_off and (self.currency or "").lower() == currency.lower():
            return max(0, amount - self.amount_off)
        return amount


class SubscriptionDetail(msgspec.Struct, frozen=True, kw_only=True):
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
    schedule: str | None
    items: list[Item]
    pending: PendingChange | None = None
    discount: Discount | None = None
    next_charge: NextCharge | None = None
    access_ends: datetime | None = None

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


_SUB_COLUMNS = (
    Subscription.id,
    Subscription.status,
    Subscription.currency,
    Subscription.collection_method,
    Subscription.created,
    Subscription.current_period_start,
    Subscription.current_period_end,
    Subscription.cancel_at_period_end,
    Subscription.cancel_at,
    Subscription.canceled_at,
    Subscription.ended_at,
    Subscription.trial_end,
    Subscription.pause_collection_behavior,
    Subscription.pause_collection_resumes_at,
    Subscription.schedule,
    Subscription.discount_coupon,
)


def _access_ends(sub: dict[str, Any]) -> datetime | None:
    """When access stops: the scheduled end of a canceling subscription, or when it ended (the
    same rule as the overview's)."""
    if sub["status"] not in ACTIVE_STATUSES:
        return sub["ended_at"] or sub["canceled_at"] or sub["current_period_end"]
    if sub["cancel_at"] is not None:
        return sub["cancel_at"]
    if sub["cancel_at_period_end"]:
        return sub["current_period_end"]
    return None


def _next_charge(
    sub: dict[str, Any],
    items: list[Item],
    pending: PendingChange | None,
    discount: Discount | None,
) -> NextCharge | None:
    """The next renewal: None when the subscription will not renew (ended, canceling, paused);
    the scheduled plan when it starts at the renewal; the discount taken off."""
    if sub["status"] not in ACTIVE_STATUSES or sub["status"] == "paused":
        return None
    if sub["cancel_at_period_end"] or sub["cancel_at"] is not None or sub["canceled_at"]:
        return None
    if sub["pause_collection_behavior"]:
        return None
    date_ = sub["current_period_end"]
    if pending is not None and pending.starts <= date_:
        amount = pending.amount
    else:
        amount = sum(item.amount for item in items)
    if discount is not None:
        amount = discount.apply(amount, sub["currency"])
    return NextCharge(amount=amount, currency=sub["currency"], date=date_)


async def _load(where: Where | Any) -> list[SubscriptionDetail]:
    """Subscriptions matching ``where`` with items, pending changes and discounts: five queries
    at most, whatever the number of subscriptions."""
    subs = await Subscription.select(*_SUB_COLUMNS).where(where)
    if not subs:
        return []
    ids = [s["id"] for s in subs]
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
        price.recurring_usage_type.as_alias("usage_type"),
        price.product.id.as_alias("product_id"),
        price.product.name.as_alias("product_name"),
        price.product.unit_label.as_alias("unit_label"),
    ).where(SubscriptionItem.subscription.is_in(ids))
    items: dict[str, list[Item]] = {}
    for row in sorted(rows, key=lambda r: (r["product_name"], r["id"])):
        items.setdefault(row.pop("subscription"), []).append(Item(**row))

    schedules = (
        await SubscriptionSchedule.select(
            SubscriptionSchedule.subscription,
            SubscriptionSchedule.next_phase_start,
            SubscriptionSchedule.next_phase_price,
            SubscriptionSchedule.next_phase_quantity,
        )
        .where(
            SubscriptionSchedule.subscription.is_in(ids)
            & SubscriptionSchedule.status.is_in(list(PENDING_SCHEDULE))
        )
        .order_by(SubscriptionSchedule.created)
    )
    pending: dict[str, PendingChange] = {}
    if schedules:
        prices = {
            row["id"]: row
            for row in await Price.select(
                Price.id,
                Price.currency,
                Price.unit_amount,
                Price.recurring_interval.as_alias("interval"),
                Price.recurring_interval_count.as_alias("interval_count"),
                Price.product.name.as_alias("product_name"),
                Price.product.unit_label.as_alias("unit_label"),
            ).where(Price.id.is_in([s["next_phase_price"] for s in schedules]))
        }
        for schedule in schedules:
            found = prices.get(schedule["next_phase_price"])
            if found is None:
                continue
            pending[schedule["subscription"]] = PendingChange(
                starts=schedule["next_phase_start"],
                price_id=found["id"],
                product_name=found["product_name"],
                unit_label=found["unit_label"],
                unit_amount=found["unit_amount"],
                currency=found["currency"],
                interval=found["interval"],
                interval_count=found["interval_count"],
                quantity=schedule["next_phase_quantity"],
            )

    coupon_ids = sorted({s["discount_coupon"] for s in subs if s["discount_coupon"]})
    discounts: dict[str, Discount] = {}
    if coupon_ids:
        for coupon in await Coupon.objects().where(Coupon.id.is_in(coupon_ids)):
            discounts[coupon.id] = _discount(coupon)

    details = []
    for sub in subs:
        own_items = items.get(sub["id"], [])
        change = pending.get(sub["id"])
        discount = discounts.get(sub.pop("discount_coupon") or "")
        details.append(
            SubscriptionDetail(
                **sub,
                items=own_items,
                pending=change,
                discount=discount,
                next_charge=_next_charge(sub, own_items, change, discount),
                access_ends=_access_ends(sub),
            )
        )
    return details


def _discount(coupon: Coupon) -> Discount:
    return Discount(
        coupon_id=coupon.id,
        name=coupon.name,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        duration=coupon.duration,
        duration_in_months=coupon.duration_in_months,
        valid=coupon.valid,
    )


async def list_subscriptions(
    customer_id: str, *, now: datetime | None = None
) -> list[SubscriptionDetail]:
    """The customer's subscriptions that still give something (active, trialing, past due,
    unpaid, paused) and those that ended in the last 90 days; active first, newest first."""
    cutoff = (now or clock.now()) - RECENTLY_ENDED
    ended_recently = (Subscription.status == "canceled") & (
        (Subscription.ended_at >= cutoff)
        | (Subscription.ended_at.is_null() & (Subscription.canceled_at >= cutoff))
    )
    details = await _load(
        (Subscription.customer == customer_id)
        & (Subscription.status.is_in(list(ACTIVE_STATUSES)) | ended_recently)
    )
    details.sort(key=lambda d: d.created, reverse=True)
    details.sort(key=lambda d: not d.is_active)
    return details


async def find(customer_id: str, subscription_id: str) -> SubscriptionDetail | None:
    """One of the customer's subscriptions; None for an unknown id or another customer's."""
    if not subscription_id or len(subscription_id) > 64:
        return None
    found = await _load(
        (Subscription.customer == customer_id) & (Subscription.id == subscription_id)
    )
    return found[0] if found else None


# --- which actions a subscription offers -------------------------------------------------------


def update_blocker(sub: SubscriptionDetail) -> str | None:
    """Why the portal cannot change this subscription's plan (a code), or None."""
    if sub.status not in UPDATABLE_STATUSES:
        return "status"
    if sub.is_canceling:
        return "canceling"
    if len(sub.items) != 1:
        return "several_items"
    if sub.items[0].usage_type == "metered":
        return "metered"
    if sub.collection_method == "send_invoice":
        return "send_invoice"
    if sub.schedule or sub.pending is not None:
        return "scheduled_change"
    return None


def blocker_message(code: str) -> str:
    return {
        "status": _("This subscription can't be changed in its current state."),
        "canceling": _("This subscription is set to cancel. Renew it to change your plan."),
        "several_items": _(
            "This subscription has several items, so its plan can't be changed here."
        ),
        "metered": _("This subscription is billed by usage, so its plan can't be changed here."),
        "send_invoice": _(
            "This subscription is paid by invoice, so its plan can't be changed here."
        ),
        "scheduled_change": _(
            "A change is already scheduled for this subscription, so its plan can't be changed "
            "until then."
        ),
        "no_options": _("There are no other plans or quantities to choose from."),
        "already_canceled": _("This subscription is already set to cancel."),
        "not_active": _("This subscription has ended."),
        "already_paused": _("Payments for this subscription are already paused."),
        "not_pausable": _("Payments for this subscription can't be paused."),
        "not_paused": _("Payments for this subscription are not paused."),
        "not_canceling": _("This subscription is not set to cancel."),
        "no_offer": _("This offer is no longer available."),
    }[code]


def cancel_blocker(sub: SubscriptionDetail) -> str | None:
    if not sub.is_active:
        return "not_active"
    if sub.is_canceling:
        return "already_canceled"
    return None


def renew_blocker(sub: SubscriptionDetail, now: datetime) -> str | None:
    """Renewing undoes a scheduled cancellation while the subscription has not ended."""
    if not sub.is_active:
        return "not_active"
    if not sub.is_canceling or (sub.access_ends is not None and sub.access_ends <= now):
        return "not_canceling"
    return None


def pause_blocker(sub: SubscriptionDetail) -> str | None:
    if not sub.is_active:
        return "not_active"
    if sub.is_paused:
        return "already_paused"
    if sub.is_canceling:
        return "already_canceled"
    if sub.status not in PAUSABLE_STATUSES:
        return "not_pausable"
    return None


def resume_blocker(sub: SubscriptionDetail) -> str | None:
    if not sub.is_active:
        return "not_active"
    if not sub.is_paused:
        return "not_paused"
    return None


class Actions(msgspec.Struct, frozen=True, kw_only=True):
    change: bool = False
    change_blocked: str | None = None  # why not, when changing plans is on but not possible
    cancel: bool = False
    renew: bool = False
    pause: bool = False
    resume: bool = False


def actions(
    features: Features, sub: SubscriptionDetail, options: list[ChangeOption], now: datetime
) -> Actions:
    """The controls a subscription shows: a switched-off feature shows none."""
    if not sub.is_active:
        return Actions()
    change, blocked = False, None
    if features.subscription_update.enabled:
        code = update_blocker(sub)
        if code is None and not has_choice(features.subscription_update, options):
            code = "no_options"
        change, blocked = code is None, (blocker_message(code) if code else None)
    pause_on = features.subscription_pause.enabled
    return Actions(
        change=change,
        change_blocked=blocked,
        cancel=features.subscription_cancel.enabled and cancel_blocker(sub) is None,
        renew=renew_blocker(sub, now) is None,
        pause=pause_on and pause_blocker(sub) is None,
        resume=pause_on and resume_blocker(sub) is None,
    )


# --- changing plans ----------------------------------------------------------------------------


class CatalogueRow(msgspec.Struct, frozen=True, kw_only=True):
    price_id: str
    product_id: str
    product_name: str
    product_active: bool
    unit_label: str | None
    price_active: bool
    type: str
    currency: str
    unit_amount: int | None
    interval: str | None
    interval_count: int
    usage_type: str | None


class ChangeOption(msgspec.Struct, frozen=True, kw_only=True):
    """A price the customer may choose (the current one included)."""

    price_id: str
    product_id: str
    product_name: str
    unit_label: str | None
    unit_amount: int
    currency: str
    interval: str | None
    interval_count: int
    current: bool = False
    adjustable: bool = False  # the customer chooses the quantity
    minimum: int = 1
    maximum: int = 1


async def catalogue(update: SubscriptionUpdate) -> list[CatalogueRow]:
    """The configured prices (of the first ten configured products) with their products: one
    query."""
    price_ids = sorted({p for product in update.products[:MAX_PRODUCTS] for p in product.prices})
    if not price_ids:
        return []
    rows = await Price.select(
        Price.id.as_alias("price_id"),
        Price.product.id.as_alias("product_id"),
        Price.product.name.as_alias("product_name"),
        Price.product.active.as_alias("product_active"),
        Price.product.unit_label.as_alias("unit_label"),
        Price.active.as_alias("price_active"),
        Price.type,
        Price.currency,
        Price.unit_amount,
        Price.recurring_interval.as_alias("interval"),
        Price.recurring_interval_count.as_alias("interval_count"),
        Price.recurring_usage_type.as_alias("usage_type"),
    ).where(Price.id.is_in(price_ids))
    return [CatalogueRow(**row) for row in rows]


def build_options(
    update: SubscriptionUpdate, sub: SubscriptionDetail, rows: list[CatalogueRow]
) -> list[ChangeOption]:
    """What the customer may choose for ``sub``: the configured products (ten at most), one price
    per product and billing interval, in the subscription's currency, active, licensed (not
    metered) with a flat amount; only the current product when prices may not change. The current
    price is always an option (to change only the quantity or add a promotion code)."""
    if len(sub.items) != 1:
        return []
    current = sub.items[0]
    allow_price = "price" in update.default_allowed_updates
    allow_quantity = "quantity" in update.default_allowed_updates
    by_id = {row.price_id: row for row in rows}
    options: list[ChangeOption] = []
    current_rules: tuple[bool, int, int] = (False, 1, 1)
    for configured in update.products[:MAX_PRODUCTS]:
        adjustable = allow_quantity and configured.adjustable_quantity.enabled
        bounds = (
            adjustable,
            configured.adjustable_quantity.minimum,
            configured.adjustable_quantity.maximum,
        )
        if configured.product == current.product_id:
            current_rules = bounds
        seen: set[tuple[str | None, int]] = set()
        for price_id in configured.prices:
            row = by_id.get(price_id)
            if row is None or row.product_id != configured.product:
                continue
            is_current = price_id == current.price_id
            usable = is_current or (
                allow_price
                and row.price_active
                and row.product_active
                and row.type == "recurring"
                and row.usage_type != "metered"
                and row.unit_amount is not None
                and row.currency.lower() == sub.currency.lower()
            )
            interval = (row.interval, row.interval_count)
            if not usable or interval in seen or any(o.price_id == price_id for o in options):
                continue
            seen.add(interval)
            options.append(
                ChangeOption(
                    price_id=row.price_id,
                    product_id=row.product_id,
                    product_name=row.product_name,
                    unit_label=row.unit_label,
                    unit_amount=row.unit_amount or 0,
                    currency=row.currency,
                    interval=row.interval,
                    interval_count=row.interval_count,
                    current=is_current,
                    adjustable=bounds[0],
                    minimum=bounds[1],
                    maximum=bounds[2],
                )
            )
    if not any(option.current for option in options):
        options.insert(
            0,
            ChangeOption(
                price_id=current.price_id,
                product_id=current.product_id,
                product_name=current.product_name,
                unit_label=current.unit_label,
                unit_amount=current.unit_amount or 0,
                currency=current.currency,
                interval=current.interval,
                interval_count=current.interval_count,
                current=True,
                adjustable=current_rules[0],
                minimum=current_rules[1],
                maximum=current_rules[2],
            ),
        )
    return options


def quantity_hint(options: list[ChangeOption]) -> str | None:
    """The hint under the Quantity field: its bounds, and which plans it applies to."""
    adjustable = [option for option in options if option.adjustable]
    if not adjustable:
        return None
    bounds = {(option.minimum, option.maximum) for option in adjustable}
    if len(adjustable) == len(options) and len(bounds) == 1:
        low, high = bounds.pop()
        return _("Enter a number between %(min)d and %(max)d.") % {"min": low, "max": high}
    parts = []
    for option in adjustable:
        part = _("For %(product)s, enter a number between %(min)d and %(max)d.") % {
            "product": option.product_name,
            "min": option.minimum,
            "max": option.maximum,
        }
        if part not in parts:
            parts.append(part)
    parts.append(_("Other plans do not use this quantity."))
    return " ".join(parts)


def has_choice(update: SubscriptionUpdate, options: list[ChangeOption]) -> bool:
    """Something can change: another price, the quantity, or a promotion code."""
    return bool(options) and (
        len(options) > 1
        or any(option.adjustable for option in options)
        or "promotion_code" in update.default_allowed_updates
    )


def interval_days(interval: str | None, count: int) -> int:
    return INTERVAL_DAYS.get(interval or "", 0) * max(count, 1)


def schedule_at_period_end(
    conditions: list[ScheduleCondition], current: Item, option: ChangeOption, quantity: int
) -> bool:
    """Whether the change waits for the end of the period (the merchant's downgrade rules):
    ``decreasing_item_amount`` when the new unit amount times quantity is below the current one,
    ``shortening_interval`` when the new billing interval is shorter (a year to a month)."""
    new_amount = option.unit_amount * quantity
    if "decreasing_item_amount" in conditions and new_amount < current.amount:
        return True
    if "shortening_interval" in conditions:
        new = interval_days(option.interval, option.interval_count)
        old = interval_days(current.interval, current.interval_count)
        if new < old:
            return True
    return False


class ChangeRequest(msgspec.Struct, frozen=True, kw_only=True):
    price_id: str
    quantity: int
    promotion_code: str | None
    proration_behavior: str
    schedule_at_period_end: bool
    trial_update_behavior: str

    def gateway_args(self) -> dict[str, Any]:
        return {
            "price_id": self.price_id,
            "quantity": self.quantity,
            "promotion_code": self.promotion_code,
            "proration_behavior": self.proration_behavior,
            "schedule_at_period_end": self.schedule_at_period_end,
            "trial_update_behavior": self.trial_update_behavior,
        }


def quantity_for(option: ChangeOption, sub: SubscriptionDetail) -> int:
    """The quantity when the customer does not choose one: kept on the same product, else 1."""
    current = sub.items[0]
    return current.quantity if option.product_id == current.product_id else 1


def validate_change(
    update: SubscriptionUpdate,
    sub: SubscriptionDetail,
    options: list[ChangeOption],
    form: ChangeForm,
    errors: dict[str, str],
) -> ChangeRequest | None:
    """Check a plan choice against the options; add messages to ``errors``; the request to send
    to the gateway when all is well."""
    chosen = form.price.strip()
    option = next((o for o in options if o.price_id == chosen), None)
    if chosen and option is None:
        errors.setdefault("price", _("Choose one of the plans shown."))
    quantity = 1
    if option is not None:
        quantity = quantity_for(option, sub)
        if option.adjustable:
            raw = form.quantity.strip()
            if not raw:
                errors.setdefault("quantity", _("Enter a quantity."))
            elif not QUANTITY_RE.match(raw):
                errors.setdefault("quantity", _("Enter the quantity as a whole number, like 5."))
            elif not option.minimum <= int(raw) <= option.maximum:
                errors.setdefault(
                    "quantity",
                    _("Enter a quantity between %(min)d and %(max)d.")
                    % {"min": option.minimum, "max": option.maximum},
                )
            else:
                quantity = int(raw)
    allow_code = "promotion_code" in update.default_allowed_updates
    code = form.promotion_code.strip() if allow_code else ""
    if not allow_code:
        errors.pop("promotion_code", None)
    if errors or option is None:
        return None
    current = sub.items[0]
    if option.price_id == current.price_id and quantity == current.quantity and not code:
        if allow_code:
            message = _("Choose a different plan or quantity, or enter a promotion code.")
        else:
            message = _("Choose a different plan or quantity.")
        errors["price"] = message
        return None
    return ChangeRequest(
        price_id=option.price_id,
        quantity=quantity,
        promotion_code=code or None,
        proration_behavior=update.proration_behavior,
        schedule_at_period_end=schedule_at_period_end(
            update.schedule_at_period_end_conditions, current, option, quantity
        ),
        trial_update_behavior=update.trial_update_behavior,
    )


async def preview_change(
    gateway: BillingGateway, sub: SubscriptionDetail, change: ChangeRequest
) -> ChangePreview:
    return await gateway.preview_subscription_change(sub.id, **change.gateway_args())


# --- cancelling ------------------------------------------------------------------------------


def cancel_reasons(features: Features) -> list[tuple[str, str]]:
    """The configured reasons (Stripe's codes, in Stripe's order) with their labels; none when the
    survey is off."""
    survey = features.subscription_cancel.cancellation_reason
    if not survey.enabled:
        return []
    labels = reason_labels()
    return [(code, labels[code]) for code in CANCELLATION_REASONS if code in survey.options]


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    at_period_end: bool
    proration_behavior: str
    reason: str | None
    comment: str | None


def validate_cancel(
    features: Features, form: CancelForm, errors: dict[str, str]
) -> CancelRequest | None:
    cancel = features.subscription_cancel
    survey = cancel.cancellation_reason.enabled
    reason = form.reason.strip() if survey else ""
    if reason and reason not in dict(cancel_reasons(features)):
        errors.setdefault("reason", _("Choose one of the reasons shown."))
    if errors:
        return None
    comment = form.comment.strip() if survey else ""
    return cancel_request(features, reason or None, comment or None)


def cancel_request(
    features: Features, reason: str | None = None, comment: str | None = None
) -> CancelRequest:
    """How the configuration cancels: at the period end or now, with its proration rule."""
    cancel = features.subscription_cancel
    return CancelRequest(
        at_period_end=cancel.mode == "at_period_end",
        proration_behavior=cancel.proration_behavior,
        reason=reason,
        comment=comment,
    )


class Offer(msgspec.Struct, frozen=True, kw_only=True):
    coupon_id: str
    name: str
    terms: str


def discount_terms(discount: Discount) -> str:
    """``20% off for 3 months``, ``$10.00 off your next invoice``…"""
    if discount.percent_off:
        amount = f"{discount.percent_off}%"
    else:
        amount = formatting.money(discount.amount_off or 0, discount.currency or "usd")
    if discount.duration == "forever":
        return _("%(amount)s off for as long as you stay subscribed") % {"amount": amount}
    if discount.duration == "repeating" and discount.duration_in_months:
        months = discount.duration_in_months
        return ngettext(
            "%(amount)s off for %(n)d month", "%(amount)s off for %(n)d months", months
        ) % {"amount": amount, "n": months}
    return _("%(amount)s off your next invoice") % {"amount": amount}


async def _has_event(subscription_id: str, names: tuple[str, ...]) -> bool:
    return await AuditEvent.exists().where(
        (AuditEvent.object_type == "subscription")
        & (AuditEvent.object_id == subscription_id)
        & AuditEvent.action.is_in(list(names))
    )


async def available_offer(features: Features, sub: SubscriptionDetail) -> Offer | None:
    """The configured retention coupon when it can go on this subscription: cancellation on,
    the subscription cancellable, the coupon valid (and in its currency), not already on it and
    never accepted for it before."""
    cancel = features.subscription_cancel
    if not cancel.enabled or not cancel.retention_coupon or cancel_blocker(sub) is not None:
        return None
    if sub.discount is not None and sub.discount.coupon_id == cancel.retention_coupon:
        return None
    coupon = await Coupon.objects().where(Coupon.id == cancel.retention_coupon).first()
    if coupon is None or not coupon.valid:
        return None
    if coupon.amount_off and (coupon.currency or "").lower() != sub.currency.lower():
        return None
    if await _has_event(sub.id, (OFFER_ACCEPTED,)):
        return None
    discount = _discount(coupon)
    terms = discount_terms(discount)
    return Offer(coupon_id=coupon.id, name=coupon.name or terms, terms=terms)


async def offer_to_show(features: Features, sub: SubscriptionDetail) -> Offer | None:
    """The retention offer for the cancellation's last step: shown once per subscription, so
    not when it was shown (or accepted) before."""
    offer = await available_offer(features, sub)
    if offer is None or await _has_event(sub.id, (OFFER_SHOWN, OFFER_ACCEPTED)):
        return None
    return offer


# --- pausing ------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return day.replace(
        year=year, month=month0 + 1, day=min(day.day, calendar.monthrange(year, month0 + 1)[1])
    )


def pause_window(now: datetime, tz: str | None) -> tuple[date, date]:
    """The first and last days payments may resume on: tomorrow to three months from today, in
    the customer's time zone."""
    today = now.astimezone(formatting.zone(tz)).date()
    return date.fromordinal(today.toordinal() + 1), add_months(today, PAUSE_MONTHS)


def validate_pause(
    form: PauseForm, now: datetime, tz: str | None, errors: dict[str, str]
) -> datetime | None:
    """When payments resume (the start of the chosen day in the customer's zone), or None to
    pause until the customer resumes. Check ``errors`` afterwards."""
    if errors or form.mode != "date":
        return None
    try:
        day = date.fromisoformat(form.resume_on.strip())
    except ValueError:
        errors["resume_on"] = _("Enter a real date, like 2027-01-15.")
        return None
    first, last = pause_window(now, tz)
    if day < first:
        errors["resume_on"] = _("The date payments resume must be in the future.")
    elif day > last:
        errors["resume_on"] = _("The date payments resume must be on or before %(date)s.") % {
            "date": formatting.day(datetime.combine(last, time(12), tzinfo=UTC), "UTC")
        }
    if errors:
        return None
    return datetime.combine(day, time(0), tzinfo=formatting.zone(tz)).astimezone(UTC)


# --- messages after an action ---------------------------------------------------------------


def change_message(sub: SubscriptionDetail, tz: str | None, *, scheduled: bool = False) -> str:
    if sub.pending is not None or scheduled:
        when = sub.pending.starts if sub.pending is not None else sub.current_period_end
        return _("Your plan will change on %(date)s.") % {"date": formatting.day(when, tz)}
    return _("Your plan was changed.")


def cancel_message(sub: SubscriptionDetail, tz: str | None) -> str:
    if not sub.is_active or sub.access_ends is None:
        return _("Your subscription was canceled immediately.")
    return _("Your subscription was canceled. You have access until %(date)s.") % {
        "date": formatting.day(sub.access_ends, tz)
    }


def renew_message(sub: SubscriptionDetail, tz: str | None) -> str:
    return _("Your subscription was renewed.")


def pause_message(sub: SubscriptionDetail, tz: str | None) -> str:
    if sub.pause_collection_resumes_at is not None:
        return _("Payments are paused until %(date)s.") % {
            "date": formatting.day(sub.pause_collection_resumes_at, tz)
        }
    return _("Payments are paused until you resume them.")


def resume_message(sub: SubscriptionDetail, tz: str | None) -> str:
    return _("Payments have resumed.")


def offer_message(sub: SubscriptionDetail, tz: str | None) -> str:
    if sub.discount is not None:
        return _("Thank you for staying: %(offer)s has been applied to your subscription.") % {
            "offer": discount_terms(sub.discount)
        }
    return _("Thank you for staying: the offer has been applied to your subscription.")


MESSAGES = {
    CHANGED: change_message,
    CANCELED: cancel_message,
    RENEWED: renew_message,
    PAUSED: pause_message,
    RESUMED: resume_message,
    OFFER_ACCEPTED: offer_message,
}


# --- actions: gateway call, then exactly one audit event ---------------------------------------


class Who(msgspec.Struct, frozen=True, kw_only=True):
    actor: audit.Actor
    configuration: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot(sub: SubscriptionDetail, action: str) -> dict[str, Any]:
    """The fields an action changes, as JSON-friendly values."""
    if action == CHANGED:
        pending = sub.pending
        return {
            "status": sub.status,
            "items": [
                {"price": i.price_id, "product": i.product_name, "quantity": i.quantity}
                for i in sub.items
            ],
            "pending_change": None
            if pending is None
            else {
                "price": pending.price_id,
                "product": pending.product_name,
                "quantity": pending.quantity,
                "starts": _iso(pending.starts),
            },
            "discount_coupon": sub.discount.coupon_id if sub.discount else None,
            "trial_end": _iso(sub.trial_end),
        }
    if action in (CANCELED, RENEWED):
        return {
            "status": sub.status,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "cancel_at": _iso(sub.cancel_at),
            "canceled_at": _iso(sub.canceled_at),
            "ended_at": _iso(sub.ended_at),
        }
    if action in (PAUSED, RESUMED):
        return {
            "status": sub.status,
            "pause_collection_behavior": sub.pause_collection_behavior,
            "pause_collection_resumes_at": _iso(sub.pause_collection_resumes_at),
        }
    return {"discount_coupon": sub.discount.coupon_id if sub.discount else None}


async def replayed(customer_id: str, action: str, subscription_id: str, key: str) -> bool:
    """Whether this idempotency key already did this action (a double submit or a retry)."""
    rows = (
        await AuditEvent.select(AuditEvent.after)
        .where(
            (AuditEvent.actor_id == customer_id)
            & (AuditEvent.action == action)
            & (AuditEvent.object_id == subscription_id)
        )
        .order_by(AuditEvent.created_at, ascending=False)
        .limit(100)
        .output(load_json=True)
    )
    return any((row["after"] or {}).get("idempotency_key") == key for row in rows)


async def _record(
    who: Who,
    action: str,
    subscription_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
    key: str,
) -> None:
    """One audit event per key: concurrent submits of one form are serialised on the
    subscription's row (SQLite's write transactions are serial already)."""
    async with db.write():
        if db.is_postgres():
            await (
                Subscription.select(Subscription.id)
                .where(Subscription.id == subscription_id)
                .lock_rows()
            )
        if await replayed(who.actor.id, action, subscription_id, key):
            return
        await audit.record(
            who.actor,
            action,
            configuration=who.configuration,
            object_type="subscription",
            object_id=subscription_id,
            before=before,
            after={**after, "idempotency_key": key},
        )


async def _finish(
    who: Who,
    action: str,
    sub: SubscriptionDetail,
    key: str,
    extra: dict[str, Any] | None = None,
) -> SubscriptionDetail:
    fresh = await find(who.actor.id, sub.id) or sub
    after = {**snapshot(fresh, action), **(extra or {})}
    await _record(who, action, sub.id, snapshot(sub, action), after, key)
    return fresh


async def change_plan(
    gateway: BillingGateway, who: Who, sub: SubscriptionDetail, change: ChangeRequest, key: str
) -> SubscriptionDetail:
    await gateway.change_subscription(sub.id, **change.gateway_args(), idempotency_key=key)
    extra = {
        "requested": {
            "price": change.price_id,
            "quantity": change.quantity,
            "promotion_code": change.promotion_code,
            "proration_behavior": change.proration_behavior,
            "schedule_at_period_end": change.schedule_at_period_end,
            "trial_update_behavior": change.trial_update_behavior,
        }
    }
    return await _finish(who, CHANGED, sub, key, extra)


async def cancel(
    gateway: BillingGateway, who: Who, sub: SubscriptionDetail, request: CancelRequest, key: str
) -> SubscriptionDetail:
    await gateway.cancel_subscription(
        sub.id,
        at_period_end=request.at_period_end,
        proration_behavior=request.proration_behavior,  # type: ignore[arg-type]
        reason=request.reason,
        comment=request.comment,
        idempotency_key=key,
    )
    extra = {
        "reason": request.reason,
        "comment": request.comment,
        "at_period_end": request.at_period_end,
        "proration_behavior": request.proration_behavior,
    }
    return await _finish(who, CANCELED, sub, key, extra)


async def renew(
    gateway: BillingGateway, who: Who, sub: SubscriptionDetail, key: str
) -> SubscriptionDetail:
    await gateway.renew_subscription(sub.id, idempotency_key=key)
    return await _finish(who, RENEWED, sub, key)


async def pause(
    gateway: BillingGateway,
    who: Who,
    sub: SubscriptionDetail,
    resumes_at: datetime | None,
    key: str,
) -> SubscriptionDetail:
    await gateway.pause_subscription(sub.id, resumes_at=resumes_at, idempotency_key=key)
    return await _finish(who, PAUSED, sub, key)


async def resume(
    gateway: BillingGateway, who: Who, sub: SubscriptionDetail, key: str
) -> SubscriptionDetail:
    await gateway.resume_subscription(sub.id, idempotency_key=key)
    return await _finish(who, RESUMED, sub, key)


async def accept_offer(
    gateway: BillingGateway, who: Who, sub: SubscriptionDetail, offer: Offer, key: str
) -> SubscriptionDetail:
    await gateway.apply_coupon(sub.id, offer.coupon_id, idempotency_key=key)
    return await _finish(who, OFFER_ACCEPTED, sub, key, {"coupon": offer.coupon_id})


async def offer_shown(who: Who, sub: SubscriptionDetail, offer: Offer) -> None:
    """Remember that the retention offer was shown (it is shown once per subscription)."""
    await audit.record(
        who.actor,
        OFFER_SHOWN,
        configuration=who.configuration,
        object_type="subscription",
        object_id=sub.id,
        after={"coupon": offer.coupon_id},
    )
