"""The features form: what the merchant ticked, checked against the catalogue, as ``Features``.

Pure rules (no database, no web framework): the caller loads the ``Choices`` (products, prices
and coupons from the billing mirror, ``app.configuration.editing.choices``) and the submitted
fields as lists of strings (checkbox groups send one value per ticked box).

Field names are also the ids of the inputs (the error summary links to them); a group of
checkboxes or radios is named by its first input's id. Per-product fields carry the product id:
``prices-<product>``, ``quantity-<product>``, ``minimum-<product>``, ``maximum-<product>``.

Rules (Stripe's, ``billing_portal.configuration.features``):
- ``email`` is never among the customer fields: it cannot change through the login link.
- Cancelling "at period end" never prorates (``proration_behavior`` is stored as ``none``).
- At most 10 products; one price per product and billing interval; prices belong to their
  product; adjustable quantities satisfy 1 ≤ minimum ≤ maximum ≤ 10,000.
- A switched-on feature must offer something (a field, a reason, a kind of plan change, a
  product), else the merchant is asked to choose one or switch the feature off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import msgspec

from app.configuration import features as f
from app.i18n import gettext as _

MAX_PRODUCTS = 10
QUANTITY_MIN = 1
QUANTITY_MAX = 10_000
CUSTOMER_FIELDS = ("name", "address", "phone", "shipping", "tax_id")
CANCEL_MODES = ("at_period_end", "immediately")
CANCEL_PRORATIONS = ("none", "create_prorations")
ALLOWED_UPDATES = ("price", "quantity", "promotion_code")
UPDATE_PRORATIONS = ("none", "create_prorations", "always_invoice")
SCHEDULE_CONDITIONS = ("decreasing_item_amount", "shortening_interval")
TRIAL_BEHAVIORS = ("end_trial", "continue_trial")
ON = "on"
_WHOLE = re.compile(r"^[0-9]{1,7}$")


class ChoicePrice(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    product: str
    active: bool
    currency: str
    unit_amount: int | None
    interval: str | None
    interval_count: int
    nickname: str | None = None


class ChoiceProduct(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    active: bool
    unit_label: str | None
    prices: list[ChoicePrice]


class ChoiceCoupon(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    valid: bool


class Choices(msgspec.Struct, frozen=True, kw_only=True):
    """What the form offers: products with their recurring, licensed prices, and coupons (the
    valid ones, plus the configured one even when it is no longer valid)."""

    products: list[ChoiceProduct]
    coupons: list[ChoiceCoupon]

    def product(self, product_id: str) -> ChoiceProduct | None:
        return next((p for p in self.products if p.id == product_id), None)


FormData = Mapping[str, Sequence[str]]


def field(name: str, product_id: str) -> str:
    """The name (and id) of a per-product field."""
    return f"{name}-{product_id}"


def _one(data: FormData, name: str) -> str:
    values = data.get(name) or []
    return values[-1].strip() if values else ""


def _many(data: FormData, name: str) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in data.get(name) or [] if v.strip()))


def _on(data: FormData, name: str) -> bool:
    return _one(data, name) == ON


def interval_word(interval: str | None) -> str:
    return {"day": _("day"), "week": _("week"), "month": _("month"), "year": _("year")}.get(
        interval or "", interval or ""
    )


# --- what the form shows -----------------------------------------------------------------------


def values_from_features(features: f.Features) -> dict:
    """The form's values for saved features (the same shape as ``values_from_form``)."""
    update = features.subscription_update
    cancel = features.subscription_cancel
    return {
        "customer_update": features.customer_update.enabled,
        "customer_update_fields": list(features.customer_update.allowed_updates),
        "invoice_history": features.invoice_history.enabled,
        "payment_method_update": features.payment_method_update.enabled,
        "subscription_cancel": cancel.enabled,
        "cancel_mode": cancel.mode,
        "cancel_proration": cancel.proration_behavior,
        "cancellation_reason": cancel.cancellation_reason.enabled,
        "cancellation_reasons": list(cancel.cancellation_reason.options),
        "retention_coupon": cancel.retention_coupon or "",
        "subscription_update": update.enabled,
        "allowed_updates": list(update.default_allowed_updates),
        "products": [p.product for p in update.products],
        "product_values": {
            p.product: {
                "prices": list(p.prices),
                "quantity": p.adjustable_quantity.enabled,
                "minimum": str(p.adjustable_quantity.minimum),
                "maximum": str(p.adjustable_quantity.maximum),
            }
            for p in update.products
        },
        "update_proration": update.proration_behavior,
        "schedule_conditions": list(update.schedule_at_period_end_conditions),
        "trial_update_behavior": update.trial_update_behavior,
        "subscription_pause": features.subscription_pause.enabled,
    }


def values_from_form(data: FormData, choices: Choices) -> dict:
    """What was submitted, to show again beside the messages (nothing is dropped or fixed)."""
    product_ids = {p.id for p in choices.products} | set(_many(data, "products"))
    return {
        "customer_update": _on(data, "customer_update"),
        "customer_update_fields": _many(data, "customer_update_fields"),
        "invoice_history": _on(data, "invoice_history"),
        "payment_method_update": _on(data, "payment_method_update"),
        "subscription_cancel": _on(data, "subscription_cancel"),
        "cancel_mode": _one(data, "cancel_mode"),
        "cancel_proration": _one(data, "cancel_proration"),
        "cancellation_reason": _on(data, "cancellation_reason"),
        "cancellation_reasons": _many(data, "cancellation_reasons"),
        "retention_coupon": _one(data, "retention_coupon"),
        "subscription_update": _on(data, "subscription_update"),
        "allowed_updates": _many(data, "allowed_updates"),
        "products": _many(data, "products"),
        "product_values": {
            pid: {
                "prices": _many(data, field("prices", pid)),
                "quantity": _on(data, field("quantity", pid)),
                "minimum": _one(data, field("minimum", pid))[:12],
                "maximum": _one(data, field("maximum", pid))[:12],
            }
            for pid in product_ids
        },
        "update_proration": _one(data, "update_proration"),
        "schedule_conditions": _many(data, "schedule_conditions"),
        "trial_update_behavior": _one(data, "trial_update_behavior"),
        "subscription_pause": _on(data, "subscription_pause"),
    }


# --- checking and building Features ------------------------------------------------------------


def _choose_from_list() -> str:
    return _("Choose one of the options shown.")


def _subset(values: list[str], allowed: Sequence[str]) -> bool:
    return all(value in allowed for value in values)


def _ordered(chosen: list[str], previous: list[str]) -> list[str]:
    """``chosen`` in the saved order first, new ones after (so re-saving changes nothing)."""
    kept = [value for value in previous if value in chosen]
    return kept + [value for value in chosen if value not in kept]


def _quantity(
    data: FormData, product: ChoiceProduct, errors: dict[str, str], previous: f.AdjustableQuantity
) -> f.AdjustableQuantity:
    enabled = _on(data, field("quantity", product.id))
    parsed: dict[str, int | None] = {}
    for bound, label in (("minimum", _("minimum")), ("maximum", _("maximum"))):
        name = field(bound, product.id)
        raw = _one(data, name)
        value = int(raw) if _WHOLE.match(raw) else None
        parsed[bound] = value
        if not enabled:
            continue
        if not raw:
            errors[name] = _("Enter the %(bound)s quantity for %(product)s.") % {
                "bound": label,
                "product": product.name,
            }
        elif value is None:
            errors[name] = _(
                "Enter the %(bound)s quantity for %(product)s as a whole number, like 5."
            ) % {"bound": label, "product": product.name}
        elif not QUANTITY_MIN <= value <= QUANTITY_MAX:
            errors[name] = _(
                "The %(bound)s quantity for %(product)s must be between %(low)d and %(high)s."
            ) % {
                "bound": label,
                "product": product.name,
                "low": QUANTITY_MIN,
                "high": f"{QUANTITY_MAX:,}",
            }
            parsed[bound] = None
    low, high = parsed["minimum"], parsed["maximum"]
    if enabled and low is not None and high is not None and low > high:
        errors[field("maximum", product.id)] = _(
            "The maximum quantity for %(product)s must be at least the minimum (%(min)d)."
        ) % {"product": product.name, "min": low}
    if not enabled:
        # Switched off: keep sensible bounds for when it is switched on again.
        ok = low is not None and high is not None and QUANTITY_MIN <= low <= high <= QUANTITY_MAX
        if not ok:
            low, high = previous.minimum, previous.maximum
    return f.AdjustableQuantity(
        enabled=enabled,
        minimum=low if low is not None else previous.minimum,
        maximum=high if high is not None else previous.maximum,
    )


def _products(
    data: FormData,
    choices: Choices,
    previous: f.SubscriptionUpdate,
    errors: dict[str, str],
) -> list[f.UpdatableProduct]:
    selected = _many(data, "products")
    unknown = [pid for pid in selected if choices.product(pid) is None]
    if unknown:
        errors["products"] = _("Choose products from the list.")
    elif len(selected) > MAX_PRODUCTS:
        errors["products"] = _(
            "Choose at most %(max)d products: customers can switch between up to %(max)d "
            "(you chose %(n)d)."
        ) % {"max": MAX_PRODUCTS, "n": len(selected)}
    saved = {p.product: p for p in previous.products}
    result: list[f.UpdatableProduct] = []
    for pid in _ordered(selected, [p.product for p in previous.products]):
        product = choices.product(pid)
        if product is None:
            continue
        prices_field = field("prices", pid)
        chosen = _many(data, prices_field)
        by_id = {price.id: price for price in product.prices}
        if any(price_id not in by_id for price_id in chosen):
            errors[prices_field] = _("Choose prices of %(product)s from the list.") % {
                "product": product.name
            }
        elif not chosen:
            errors[prices_field] = _("Choose at least one price for %(product)s.") % {
                "product": product.name
            }
        else:
            intervals: dict[str | None, int] = {}
            for price_id in chosen:
                interval = by_id[price_id].interval
                intervals[interval] = intervals.get(interval, 0) + 1
            repeated = [interval for interval, count in intervals.items() if count > 1]
            if repeated:
                errors[prices_field] = _(
                    "Choose only one price per billing interval for %(product)s: more than one "
                    "of the chosen prices is billed every %(interval)s."
                ) % {"product": product.name, "interval": interval_word(repeated[0])}
        before = saved.get(pid)
        quantity = _quantity(
            data,
            product,
            errors,
            before.adjustable_quantity if before else f.AdjustableQuantity(),
        )
        result.append(
            f.UpdatableProduct(
                product=pid,
                prices=_ordered(
                    [p for p in chosen if p in by_id], list(before.prices) if before else []
                ),
                adjustable_quantity=quantity,
            )
        )
    return result


def parse(
    data: FormData, choices: Choices, current: f.Features
) -> tuple[f.Features, dict[str, str]]:
    """The features the form asks for, and a message per field that is not right."""
    errors: dict[str, str] = {}

    # Customer information
    fields = _many(data, "customer_update_fields")
    if "email" in fields:
        errors["customer_update_fields"] = _(
            "Email addresses cannot be changed through the login link: customers sign in with "
            "theirs."
        )
    elif not _subset(fields, CUSTOMER_FIELDS):
        errors["customer_update_fields"] = _choose_from_list()
    elif _on(data, "customer_update") and not fields:
        errors["customer_update_fields"] = _(
            "Choose at least one kind of information customers can update, or switch off "
            "customer information updates."
        )
    customer_update = f.CustomerUpdate(
        enabled=_on(data, "customer_update"),
        allowed_updates=[name for name in CUSTOMER_FIELDS if name in fields],
    )

    # Cancellation
    mode = _one(data, "cancel_mode")
    if mode not in CANCEL_MODES:
        errors["cancel_mode"] = _("Choose when a cancellation takes effect.")
        mode = current.subscription_cancel.mode
    proration = _one(data, "cancel_proration")
    if proration not in CANCEL_PRORATIONS:
        errors["cancel_proration"] = _choose_from_list()
        proration = current.subscription_cancel.proration_behavior
    if mode == "at_period_end":
        proration = "none"  # nothing is left to credit at the end of the period
    reasons = _many(data, "cancellation_reasons")
    if not _subset(reasons, f.CANCELLATION_REASONS):
        errors["cancellation_reasons"] = _choose_from_list()
    elif _on(data, "cancellation_reason") and not reasons:
        errors["cancellation_reasons"] = _(
            "Choose at least one reason to offer, or switch off asking for a reason."
        )
    coupon = _one(data, "retention_coupon")
    if coupon and coupon not in {c.id for c in choices.coupons}:
        errors["retention_coupon"] = _("Choose a coupon from the list, or “No retention coupon”.")
        coupon = current.subscription_cancel.retention_coupon or ""
    subscription_cancel = f.SubscriptionCancel(
        enabled=_on(data, "subscription_cancel"),
        mode=mode,
        proration_behavior=proration,
        cancellation_reason=f.CancellationReason(
            enabled=_on(data, "cancellation_reason"),
            options=[code for code in f.CANCELLATION_REASONS if code in reasons],
        ),
        retention_coupon=coupon or None,
    )

    # Plan changes
    previous = current.subscription_update
    update_on = _on(data, "subscription_update")
    allowed = _many(data, "allowed_updates")
    if not _subset(allowed, ALLOWED_UPDATES):
        errors["allowed_updates"] = _choose_from_list()
        allowed = [value for value in allowed if value in ALLOWED_UPDATES]
    products = _products(data, choices, previous, errors)
    if update_on and "allowed_updates" not in errors:
        if not allowed:
            errors["allowed_updates"] = _(
                "Choose at least one change customers can make, or switch off plan changes."
            )
        elif "quantity" in allowed and not any(p.adjustable_quantity.enabled for p in products):
            errors["allowed_updates"] = _(
                "Let customers adjust the quantity of at least one product below, or untick "
                "“Change the quantity”."
            )
    if update_on and "price" in allowed and not products and "products" not in errors:
        errors["products"] = _("Choose at least one product customers can switch to.")
    update_proration = _one(data, "update_proration")
    if update_proration not in UPDATE_PRORATIONS:
        errors["update_proration"] = _choose_from_list()
        update_proration = previous.proration_behavior
    conditions = _many(data, "schedule_conditions")
    if not _subset(conditions, SCHEDULE_CONDITIONS):
        errors["schedule_conditions"] = _choose_from_list()
    trial = _one(data, "trial_update_behavior")
    if trial not in TRIAL_BEHAVIORS:
        errors["trial_update_behavior"] = _choose_from_list()
        trial = previous.trial_update_behavior
    subscription_update = f.SubscriptionUpdate(
        enabled=update_on,
        default_allowed_updates=[v for v in ALLOWED_UPDATES if v in allowed],
        products=products,
        proration_behavior=update_proration,
        schedule_at_period_end_conditions=[c for c in SCHEDULE_CONDITIONS if c in conditions],
        trial_update_behavior=trial,
    )

    features = f.Features(
        customer_update=customer_update,
        invoice_history=f.InvoiceHistory(enabled=_on(data, "invoice_history")),
        payment_method_update=f.PaymentMethodUpdate(enabled=_on(data, "payment_method_update")),
        subscription_cancel=subscription_cancel,
        subscription_update=subscription_update,
        subscription_pause=f.SubscriptionPause(enabled=_on(data, "subscription_pause")),
    )
    return features, _in_form_order(errors, choices)


_ORDER = (
    "customer_update_fields",
    "cancel_mode",
    "cancel_proration",
    "cancellation_reasons",
    "retention_coupon",
    "allowed_updates",
    "products",
    # per-product fields come here
    "update_proration",
    "schedule_conditions",
    "trial_update_behavior",
)


def _in_form_order(errors: dict[str, str], choices: Choices) -> dict[str, str]:
    """The messages in the order of the fields on the page (for the error summary)."""
    per_product = [
        field(name, product.id)
        for product in choices.products
        for name in ("prices", "minimum", "maximum")
    ]
    at = _ORDER.index("products") + 1
    order = [*_ORDER[:at], *per_product, *_ORDER[at:]]
    rank = {name: index for index, name in enumerate(order)}
    return dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(order))))


def changes(before: f.Features, after: f.Features) -> tuple[dict, dict]:
    """Only what differs, nested as in ``Features`` (lists compared whole)."""
    return _diff(msgspec.to_builtins(before), msgspec.to_builtins(after))


def _diff(before: dict, after: dict) -> tuple[dict, dict]:
    old: dict = {}
    new: dict = {}
    for key in list(after) + [k for k in before if k not in after]:
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            old[key], new[key] = _diff(a, b)
        else:
            old[key], new[key] = a, b
    return old, new
