"""Cancelling: the survey's reasons, checking the answers, how the configuration cancels, and the
retention offer (shown once per subscription, accepted at most once)."""

from __future__ import annotations

import msgspec

from app.audit.tables import AuditEvent
from app.billing.queries import Discount, SubscriptionView
from app.billing.tables import Coupon
from app.configuration.features import CANCELLATION_REASONS, Features, reason_labels
from app.i18n import gettext as _
from app.portal.subscriptions.eligibility import cancel_blocker
from app.portal.subscriptions.forms import CancelForm
from app.portal.subscriptions.messages import OFFER_ACCEPTED, OFFER_SHOWN, discount_terms


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


async def _has_event(subscription_id: str, names: tuple[str, ...]) -> bool:
    return await AuditEvent.exists().where(
        (AuditEvent.object_type == "subscription")
        & (AuditEvent.object_id == subscription_id)
        & AuditEvent.action.is_in(list(names))
    )


async def available_offer(features: Features, sub: SubscriptionView) -> Offer | None:
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
    discount = Discount.of(coupon)
    terms = discount_terms(discount)
    return Offer(coupon_id=coupon.id, name=coupon.name or terms, terms=terms)


async def offer_to_show(features: Features, sub: SubscriptionView) -> Offer | None:
    """The retention offer for the cancellation's last step: shown once per subscription, so
    not when it was shown (or accepted) before."""
    offer = await available_offer(features, sub)
    if offer is None or await _has_event(sub.id, (OFFER_SHOWN, OFFER_ACCEPTED)):
        return None
    return offer
