"""Payment methods: the customer's cards, which one is the default, and the rules for changing them.

Reads come from the mirror tables; every change goes through the ``BillingGateway`` with the
idempotency key of the submitted form, and each change that happens is recorded once in the audit
log (a repeated submit of the same form is answered the same way and recorded nothing new).
"""

from __future__ import annotations

import msgspec

from app.audit import service as audit
from app.audit.tables import AuditEvent
from app.billing.gateway import AddPaymentMethodStart, BillingGateway, CardInput
from app.billing.queries import ACTIVE_STATUSES
from app.billing.tables import (
    Customer,
    IdempotencyRecord,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)
from app.configuration.features import Features
from app.i18n import gettext as _


class NotFound(Exception):
    """No such payment method for this customer."""


class LastPaymentMethod(Exception):
    """Removing this card would leave an active subscription without a payment method."""


class CardRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool
    # Names of active subscriptions whose own default payment method is this card (and differs
    # from the customer's default).
    used_for: list[str]


class PaymentMethodsView(msgspec.Struct, frozen=True, kw_only=True):
    cards: list[CardRow]
    has_active_subscription: bool

    @property
    def default(self) -> CardRow | None:
        return next((card for card in self.cards if card.is_default), None)


class Removal(msgspec.Struct, frozen=True, kw_only=True):
    card: CardRow
    allowed: bool


def enabled(features: Features) -> bool:
    return features.payment_method_update.enabled


def may_remove(card_count: int, has_active_subscription: bool) -> bool:
    """The last payment method cannot go while a subscription is in an active status."""
    return card_count > 1 or not has_active_subscription


def last_method_reason() -> str:
    return _(
        "You need at least one payment method while you have an active subscription. "
        "Add another card first."
    )


# -- reads -----------------------------------------------------------------------------------------
_CARD_COLUMNS = (
    PaymentMethod.id,
    PaymentMethod.type,
    PaymentMethod.card_brand.as_alias("brand"),
    PaymentMethod.card_last4.as_alias("last4"),
    PaymentMethod.card_exp_month.as_alias("exp_month"),
    PaymentMethod.card_exp_year.as_alias("exp_year"),
)


async def _subscription_overrides(customer: Customer) -> tuple[bool, dict[str, list[str]]]:
    """Whether the customer has an active subscription, and for each payment method that is an
    active subscription's own default (other than the customer's), the subscriptions' names."""
    subs = await Subscription.select(Subscription.id, Subscription.default_payment_method).where(
        (Subscription.customer == customer.id) & Subscription.status.is_in(list(ACTIVE_STATUSES))
    )
    customer_default = customer.invoice_settings_default_payment_method
    overriding = {
        sub["id"]: sub["default_payment_method"]
        for sub in subs
        if sub["default_payment_method"] and sub["default_payment_method"] != customer_default
    }
    used_for: dict[str, list[str]] = {}
    if overriding:
        rows = await SubscriptionItem.select(
            SubscriptionItem.subscription,
            SubscriptionItem.price.product.name.as_alias("product_name"),
        ).where(SubscriptionItem.subscription.is_in(list(overriding)))
        names: dict[str, list[str]] = {}
        for row in sorted(rows, key=lambda r: r["product_name"]):
            names.setdefault(row["subscription"], []).append(row["product_name"])
        for sub_id, pm_id in sorted(overriding.items()):
            used_for.setdefault(pm_id, []).append(", ".join(names.get(sub_id, [])) or sub_id)
    return bool(subs), used_for


async def payment_methods(customer: Customer) -> PaymentMethodsView:
    """The customer's payment methods, the default first, then newest first (three queries)."""
    rows = (
        await PaymentMethod.select(*_CARD_COLUMNS)
        .where(PaymentMethod.customer == customer.id)
        .order_by(PaymentMethod.created, PaymentMethod.id, ascending=False)
    )
    has_active, used_for = await _subscription_overrides(customer)
    default_id = customer.invoice_settings_default_payment_method
    cards = [
        CardRow(**row, is_default=row["id"] == default_id, used_for=used_for.get(row["id"], []))
        for row in rows
    ]
    cards.sort(key=lambda card: not card.is_default)
    return PaymentMethodsView(cards=cards, has_active_subscription=has_active)


async def removal(customer: Customer, payment_method_id: str) -> Removal:
    """The card to remove and whether the rules allow it; ``NotFound`` when the customer has no
    such payment method."""
    view = await payment_methods(customer)
    card = next((c for c in view.cards if c.id == payment_method_id), None)
    if card is None:
        raise NotFound(payment_method_id)
    return Removal(card=card, allowed=may_remove(len(view.cards), view.has_active_subscription))


async def card(customer: Customer, payment_method_id: str) -> CardRow:
    view = await payment_methods(customer)
    found = next((c for c in view.cards if c.id == payment_method_id), None)
    if found is None:
        raise NotFound(payment_method_id)
    return found


async def _replayed(key: str) -> bool:
    """True when this form (its idempotency key) was already carried out: the gateway will answer
    the same without changing anything, and nothing new is recorded."""
    return await IdempotencyRecord.exists().where(IdempotencyRecord.id == key)


async def _detached_card(payment_method_id: str) -> CardRow | None:
    row = (
        await PaymentMethod.select(*_CARD_COLUMNS)
        .where((PaymentMethod.id == payment_method_id) & PaymentMethod.customer.is_null())
        .first()
    )
    return None if row is None else CardRow(**row, is_default=False, used_for=[])


def _card_state(card: CardRow) -> dict[str, object]:
    return {
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }


# -- changes ---------------------------------------------------------------------------------------
async def start_add(
    gateway: BillingGateway, customer: Customer, *, success_url: str, cancel_url: str, key: str
) -> AddPaymentMethodStart:
    return await gateway.start_add_payment_method(
        customer.id, success_url=success_url, cancel_url=cancel_url, idempotency_key=key
    )


async def add_card(
    gateway: BillingGateway,
    customer: Customer,
    card_input: CardInput,
    *,
    make_default: bool,
    key: str,
    actor: audit.Actor,
    configuration: str,
) -> str:
    """Attach a card typed into Portico's own form (sandbox); returns the new ``pm_`` id.
    Raises ``GatewayError`` (``CardDeclined``…) with a message for the customer."""
    replay = await _replayed(key)
    before_default = customer.invoice_settings_default_payment_method
    pm_id = await gateway.add_card(
        customer.id, card_input, make_default=make_default, idempotency_key=key
    )
    if not replay:
        await _record_added(customer, pm_id, make_default, before_default, actor, configuration)
    return pm_id


async def complete_add(
    gateway: BillingGateway,
    customer: Customer,
    *,
    session_id: str,
    make_default: bool,
    actor: audit.Actor,
    configuration: str,
) -> str:
    """After the provider's hosted page (Stripe Checkout in setup mode) sent the customer back."""
    before_default = customer.invoice_settings_default_payment_method
    pm_id = await gateway.complete_add_payment_method(
        customer.id, session_id=session_id, make_default=make_default
    )
    seen = await AuditEvent.exists().where(
        (AuditEvent.action == "payment_method.added") & (AuditEvent.object_id == pm_id)
    )
    if not seen:
        await _record_added(customer, pm_id, make_default, before_default, actor, configuration)
    return pm_id


async def _record_added(
    customer: Customer,
    pm_id: str,
    make_default: bool,
    before_default: str | None,
    actor: audit.Actor,
    configuration: str,
) -> None:
    row = await PaymentMethod.select(*_CARD_COLUMNS).where(PaymentMethod.id == pm_id).first()
    after: dict[str, object] = {"customer": customer.id, "default": make_default}
    if row is not None:
        after.update(_card_state(CardRow(**row, is_default=make_default, used_for=[])))
    await audit.record(
        actor,
        "payment_method.added",
        configuration=configuration,
        object_type="payment_method",
        object_id=pm_id,
        before={"default_payment_method": before_default} if make_default else {},
        after=after,
    )


async def make_default(
    gateway: BillingGateway,
    customer: Customer,
    payment_method_id: str,
    *,
    key: str,
    actor: audit.Actor,
    configuration: str,
) -> CardRow:
    """Make one of the customer's cards the default for invoices and subscriptions that have no
    default of their own. ``NotFound`` for a card the customer does not have."""
    chosen = await card(customer, payment_method_id)
    replay = await _replayed(key)
    before = customer.invoice_settings_default_payment_method
    await gateway.set_default_payment_method(customer.id, chosen.id, idempotency_key=key)
    if not replay and before != chosen.id:
        await audit.record(
            actor,
            "payment_method.default_set",
            configuration=configuration,
            object_type="customer",
            object_id=customer.id,
            before={"default_payment_method": before},
            after={"default_payment_method": chosen.id},
        )
    return chosen


async def remove(
    gateway: BillingGateway,
    customer: Customer,
    payment_method_id: str,
    *,
    key: str,
    actor: audit.Actor,
    configuration: str,
) -> CardRow:
    """Detach one of the customer's cards. ``NotFound`` for a card the customer does not have,
    ``LastPaymentMethod`` when the rules keep it."""
    replay = await _replayed(key)
    try:
        check = await removal(customer, payment_method_id)
    except NotFound:
        # The same form sent twice: the card is already detached; answer as the first time did.
        detached = await _detached_card(payment_method_id) if replay else None
        if detached is None:
            raise
        await gateway.detach_payment_method(customer.id, payment_method_id, idempotency_key=key)
        return detached
    if not check.allowed:
        raise LastPaymentMethod(payment_method_id)
    await gateway.detach_payment_method(customer.id, check.card.id, idempotency_key=key)
    if not replay:
        await audit.record(
            actor,
            "payment_method.removed",
            configuration=configuration,
            object_type="payment_method",
            object_id=check.card.id,
            before={**_card_state(check.card), "customer": customer.id,
                    "default": check.card.is_default},
            after={"customer": None},
        )  # fmt: skip
    return check.card
