"""Changing plans: the options a configuration allows for a subscription, checking a choice, the
downgrade rules (change now or at the period end) and the preview."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from app.billing.gateway import BillingGateway, ChangePreview
from app.billing.queries import PlanItem, SubscriptionView
from app.billing.tables import Price
from app.configuration.features import ScheduleCondition, SubscriptionUpdate
from app.i18n import gettext as _
from app.portal.subscriptions.forms import ChangeForm

MAX_PRODUCTS = 10
QUANTITY_RE = re.compile(r"^[0-9]{1,6}$")
# Rough lengths, only to tell a shorter billing interval from a longer one.
INTERVAL_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


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
    update: SubscriptionUpdate, sub: SubscriptionView, rows: list[CatalogueRow]
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
            options.append(_option(row, is_current, bounds))
    if not any(option.current for option in options):
        options.insert(0, _option(current, True, current_rules))
    return options


def _option(
    price: CatalogueRow | PlanItem, current: bool, rules: tuple[bool, int, int]
) -> ChangeOption:
    """A choice from a catalogue row (or the current item), with its quantity rules."""
    adjustable, minimum, maximum = rules
    return ChangeOption(
        price_id=price.price_id,
        product_id=price.product_id,
        product_name=price.product_name,
        unit_label=price.unit_label,
        unit_amount=price.unit_amount or 0,
        currency=price.currency,
        interval=price.interval,
        interval_count=price.interval_count,
        current=current,
        adjustable=adjustable,
        minimum=minimum,
        maximum=maximum,
    )


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
    conditions: list[ScheduleCondition], current: PlanItem, option: ChangeOption, quantity: int
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


def quantity_for(option: ChangeOption, sub: SubscriptionView) -> int:
    """The quantity when the customer does not choose one: kept on the same product, else 1."""
    current = sub.items[0]
    return current.quantity if option.product_id == current.product_id else 1


def validate_change(
    update: SubscriptionUpdate,
    sub: SubscriptionView,
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
    gateway: BillingGateway, sub: SubscriptionView, change: ChangeRequest
) -> ChangePreview:
    return await gateway.preview_subscription_change(sub.id, **change.gateway_args())
