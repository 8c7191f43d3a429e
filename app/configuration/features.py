"""What a portal configuration lets customers do; the shape follows Stripe's
``billing_portal.configuration.features`` (plus ``subscription_pause``, which Stripe removed and
Portico keeps, off by default). Stored as JSON on the configuration row."""

from __future__ import annotations

from typing import Literal

import msgspec

from app.i18n import gettext as _

CANCELLATION_REASONS = (
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "too_complex",
    "low_quality",
    "other",
)


def reason_labels() -> dict[str, str]:
    """Stripe's eight cancellation reasons with Stripe's labels, in Stripe's order."""
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


CustomerField = Literal["name", "address", "phone", "shipping", "tax_id"]
ProrationBehavior = Literal["none", "create_prorations", "always_invoice"]
ScheduleCondition = Literal["decreasing_item_amount", "shortening_interval"]


class CustomerUpdate(msgspec.Struct, kw_only=True):
    enabled: bool = True
    # Email is never editable through the login link (Stripe's rule for the no-code portal).
    allowed_updates: list[CustomerField] = msgspec.field(
        default_factory=lambda: ["name", "address", "phone"]
    )


class InvoiceHistory(msgspec.Struct, kw_only=True):
    enabled: bool = True


class PaymentMethodUpdate(msgspec.Struct, kw_only=True):
    enabled: bool = True


class CancellationReason(msgspec.Struct, kw_only=True):
    enabled: bool = True
    options: list[str] = msgspec.field(default_factory=lambda: list(CANCELLATION_REASONS))


class SubscriptionCancel(msgspec.Struct, kw_only=True):
    enabled: bool = True
    mode: Literal["at_period_end", "immediately"] = "at_period_end"
    proration_behavior: Literal["none", "create_prorations"] = "none"
    cancellation_reason: CancellationReason = msgspec.field(default_factory=CancellationReason)
    retention_coupon: str | None = None


class AdjustableQuantity(msgspec.Struct, kw_only=True):
    enabled: bool = False
    minimum: int = 1
    maximum: int = 99


class UpdatableProduct(msgspec.Struct, kw_only=True):
    product: str
    prices: list[str]
    adjustable_quantity: AdjustableQuantity = msgspec.field(default_factory=AdjustableQuantity)


class SubscriptionUpdate(msgspec.Struct, kw_only=True):
    enabled: bool = False
    default_allowed_updates: list[Literal["price", "quantity", "promotion_code"]] = msgspec.field(
        default_factory=list
    )
    products: list[UpdatableProduct] = msgspec.field(default_factory=list)
    proration_behavior: ProrationBehavior = "none"
    schedule_at_period_end_conditions: list[ScheduleCondition] = msgspec.field(default_factory=list)
    trial_update_behavior: Literal["end_trial", "continue_trial"] = "end_trial"


class SubscriptionPause(msgspec.Struct, kw_only=True):
    enabled: bool = False


class Features(msgspec.Struct, kw_only=True):
    customer_update: CustomerUpdate = msgspec.field(default_factory=CustomerUpdate)
    invoice_history: InvoiceHistory = msgspec.field(default_factory=InvoiceHistory)
    payment_method_update: PaymentMethodUpdate = msgspec.field(default_factory=PaymentMethodUpdate)
    subscription_cancel: SubscriptionCancel = msgspec.field(default_factory=SubscriptionCancel)
    subscription_update: SubscriptionUpdate = msgspec.field(default_factory=SubscriptionUpdate)
    subscription_pause: SubscriptionPause = msgspec.field(default_factory=SubscriptionPause)


def decode(raw: str | bytes | dict | None) -> Features:
    if raw is None or raw == "" or raw == {}:
        return Features()
    if isinstance(raw, dict):
        return msgspec.convert(raw, Features)
    return msgspec.json.decode(raw, type=Features)


def encode(features: Features) -> str:
    return msgspec.json.encode(features).decode()
