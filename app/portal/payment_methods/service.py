"""Payment methods: the customer's cards, which one is the default, and the rules for changing them.

Reads come from the mirror tables; every change goes through the ``BillingGateway`` with the
idempotency key of the submitted form, and each change that happens is recorded once in the audit
log (``activity.record_once``: a repeated submit of the same form is answered the same way and
records nothing new, except the event its first submit did not live to write, ``Replay.APPLIED``).
Making the default card the default again changes nothing: it is neither sent nor recorded.

The last-payment-method rule is checked and the card detached under ``activity.customer_lock``,
so two removals at once (two tabs, two cards) cannot both pass the check.
"""

from __future__ import annotations

import msgspec

from app.billing.gateway import AddPaymentMethodStart, BillingGateway, CardInput
from app.billing.queries import ACTIVE_STATUSES, CARD_COLUMNS, CardView
from app.billing.tables import Customer, PaymentMethod, Subscription, SubscriptionItem
from app.configuration.features import Features
from app.i18n import gettext as _
from app.portal import activity
from app.portal.activity import Who

ADDED = "payment_method.added"
DEFAULT_SET = "payment_method.default_set"
REMOVED = "payment_method.removed"


class NotFound(Exception):
    """No such payment method for this customer."""


class LastPaymentMethod(Exception):
    """Removing this card would leave an active subscription without a payment method."""


class CardRow(CardView, frozen=True, kw_only=True):
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
        await PaymentMethod.select(*CARD_COLUMNS)
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


def _find(view: PaymentMethodsView, payment_method_id: str) -> CardRow:
    found = next((c for c in view.cards if c.id == payment_method_id), None)
    if found is None:
        raise NotFound(payment_method_id)
    return found


async def removal(customer: Customer, payment_method_id: str) -> Removal:
    """The card to remove and whether the rules allow it; ``NotFound`` when the customer has no
    such payment method."""
    view = await payment_methods(customer)
    allowed = may_remove(len(view.cards), view.has_active_subscription)
    return Removal(card=_find(view, payment_method_id), allowed=allowed)


async def card(customer: Customer, payment_method_id: str) -> CardRow:
    return _find(await payment_methods(customer), payment_method_id)


async def _detached_card(payment_method_id: str) -> CardRow | None:
    row = (
        await PaymentMethod.select(*CARD_COLUMNS)
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
    who: Who,
    customer: Customer,
    card_input: CardInput,
    *,
    make_default: bool,
    key: str,
) -> str:
    """Attach a card typed into Portico's own form (sandbox); returns the new ``pm_`` id.
    Raises ``GatewayError`` (``CardDeclined``…) with a message for the customer."""
    before_default = customer.invoice_settings_default_payment_method
    state = await activity.replay(who, ADDED, key)
    pm_id = await gateway.add_card(
        customer.id, card_input, make_default=make_default, idempotency_key=key
    )
    await _record_added(who, customer, pm_id, make_default, before_default, key, state)
    return pm_id


async def complete_add(
    gateway: BillingGateway,
    who: Who,
    customer: Customer,
    *,
    session_id: str,
    make_default: bool,
    key: str,
) -> str:
    """After the provider's hosted page (Stripe Checkout in setup mode) sent the customer back;
    ``key`` comes from the session id, so coming back twice records one event."""
    before_default = customer.invoice_settings_default_payment_method
    pm_id = await gateway.complete_add_payment_method(
        customer.id, session_id=session_id, make_default=make_default
    )
    await _record_added(who, customer, pm_id, make_default, before_default, key)
    return pm_id


async def _record_added(
    who: Who,
    customer: Customer,
    pm_id: str,
    make_default: bool,
    before_default: str | None,
    key: str,
    replay: activity.Replay = activity.Replay.NEW,
) -> None:
    row = await PaymentMethod.select(*CARD_COLUMNS).where(PaymentMethod.id == pm_id).first()
    after: dict[str, object] = {"customer": customer.id, "default": make_default}
    if row is not None:
        after.update(_card_state(CardRow(**row, is_default=make_default, used_for=[])))
    await activity.record_once(
        who,
        ADDED,
        key=key,
        object_type="payment_method",
        object_id=pm_id,
        before={"default_payment_method": before_default} if make_default else {},
        after=after,
        replay=replay,
    )


async def make_default(
    gateway: BillingGateway, who: Who, customer: Customer, payment_method_id: str, *, key: str
) -> CardRow:
    """Make one of the customer's cards the default for invoices and subscriptions that have no
    default of their own. ``NotFound`` for a card the customer does not have."""
    chosen = await card(customer, payment_method_id)
    before = customer.invoice_settings_default_payment_method
    state = await activity.replay(who, DEFAULT_SET, key)
    if state is activity.Replay.NEW and before == chosen.id:
        return chosen  # already the default: nothing to send, nothing to record
    await gateway.set_default_payment_method(customer.id, chosen.id, idempotency_key=key)
    await activity.record_once(
        who,
        DEFAULT_SET,
        key=key,
        object_type="customer",
        object_id=customer.id,
        before={"default_payment_method": before},
        after={"default_payment_method": chosen.id},
        replay=state,
    )
    return chosen


async def remove(
    gateway: BillingGateway, who: Who, customer: Customer, payment_method_id: str, *, key: str
) -> CardRow:
    """Detach one of the customer's cards. ``NotFound`` for a card the customer does not have,
    ``LastPaymentMethod`` when the rules keep it. The rule is checked, and the card detached,
    under the customer's lock: of two removals at once, the second sees the first's result (the
    same form twice: the first's answer)."""
    async with activity.customer_lock(customer.id):
        state = await activity.replay(who, REMOVED, key)
        if state is not activity.Replay.NEW:
            # The same form sent again: the card is already detached; answer as the first time
            # did (recording the removal if the first submit could not).
            detached = await _detached_card(payment_method_id)
            if detached is not None:
                await activity.record_once(
                    who,
                    REMOVED,
                    key=key,
                    object_type="payment_method",
                    object_id=detached.id,
                    after={**_card_state(detached), "customer": None},
                    replay=state,
                )
                return detached
        current = await Customer.objects().where(Customer.id == customer.id).first() or customer
        check = await removal(current, payment_method_id)
        if not check.allowed:
            raise LastPaymentMethod(payment_method_id)
        await gateway.detach_payment_method(customer.id, check.card.id, idempotency_key=key)
        await activity.record_once(
            who,
            REMOVED,
            key=key,
            object_type="payment_method",
            object_id=check.card.id,
            before={**_card_state(check.card), "customer": customer.id,
                    "default": check.card.is_default},
            after={"customer": None},
        )  # fmt: skip
    return check.card
