"""The subscription actions: the gateway call, then exactly one audit event per form (see
``app.portal.activity``), with the fields the action changed before and after. ``replayed``
tells a form sent again, and writes the event its first submit did not live to write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from app.billing import queries
from app.billing.gateway import BillingGateway
from app.billing.queries import SubscriptionView
from app.portal import activity
from app.portal.activity import Who
from app.portal.subscriptions.cancellation import CancelRequest, Offer
from app.portal.subscriptions.messages import (
    CANCELED,
    CHANGED,
    OFFER_ACCEPTED,
    OFFER_SHOWN,
    PAUSED,
    RENEWED,
    RESUMED,
)
from app.portal.subscriptions.plans import ChangeRequest


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot(sub: SubscriptionView, action: str) -> dict[str, Any]:
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


async def replayed(
    who: Who,
    action: str,
    sub: SubscriptionView,
    key: str,
    details: Callable[[], dict[str, Any]] | None = None,
) -> bool:
    """Whether ``key`` already did ``action``. When billing changed but the process died before
    the event was written (``Replay.APPLIED``), the event is written now, once: the state now,
    with ``details()`` (what the form asked for), marked recovered."""
    state = await activity.replay(who, action, key)
    if state is activity.Replay.APPLIED:
        await _finish(who, action, sub, key, details() if details else None, replay=state)
    return state is not activity.Replay.NEW


async def _finish(
    who: Who,
    action: str,
    sub: SubscriptionView,
    key: str,
    extra: dict[str, Any] | None = None,
    *,
    replay: activity.Replay = activity.Replay.NEW,
) -> SubscriptionView:
    """Record ``action`` on ``sub`` (its state before, read afresh after, plus ``extra``)."""
    fresh = await queries.subscription(who.customer_id, sub.id) or sub
    await activity.record_once(
        who,
        action,
        key=key,
        object_type="subscription",
        object_id=sub.id,
        before=snapshot(sub, action),
        after={**snapshot(fresh, action), **(extra or {})},
        replay=replay,
    )
    return fresh


async def change_plan(
    gateway: BillingGateway, who: Who, sub: SubscriptionView, change: ChangeRequest, key: str
) -> SubscriptionView:
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
    gateway: BillingGateway, who: Who, sub: SubscriptionView, request: CancelRequest, key: str
) -> SubscriptionView:
    await gateway.cancel_subscription(
        sub.id,
        at_period_end=request.at_period_end,
        proration_behavior=request.proration_behavior,  # type: ignore[arg-type]
        reason=request.reason,
        comment=request.comment,
        idempotency_key=key,
    )
    return await _finish(who, CANCELED, sub, key, cancel_details(request))


def cancel_details(request: CancelRequest) -> dict[str, Any]:
    """What a cancellation's event records of its form (the activity's cancellation summary
    counts the reasons)."""
    return {
        "reason": request.reason,
        "comment": request.comment,
        "at_period_end": request.at_period_end,
        "proration_behavior": request.proration_behavior,
    }


async def renew(
    gateway: BillingGateway, who: Who, sub: SubscriptionView, key: str
) -> SubscriptionView:
    await gateway.renew_subscription(sub.id, idempotency_key=key)
    return await _finish(who, RENEWED, sub, key)


async def pause(
    gateway: BillingGateway,
    who: Who,
    sub: SubscriptionView,
    resumes_at: datetime | None,
    key: str,
) -> SubscriptionView:
    await gateway.pause_subscription(sub.id, resumes_at=resumes_at, idempotency_key=key)
    return await _finish(who, PAUSED, sub, key)


async def resume(
    gateway: BillingGateway, who: Who, sub: SubscriptionView, key: str
) -> SubscriptionView:
    await gateway.resume_subscription(sub.id, idempotency_key=key)
    return await _finish(who, RESUMED, sub, key)


async def accept_offer(
    gateway: BillingGateway, who: Who, sub: SubscriptionView, offer: Offer, key: str
) -> SubscriptionView:
    await gateway.apply_coupon(sub.id, offer.coupon_id, idempotency_key=key)
    return await _finish(who, OFFER_ACCEPTED, sub, key, {"coupon": offer.coupon_id})


async def offer_shown(who: Who, sub: SubscriptionView, offer: Offer) -> None:
    """Remember that the retention offer was shown (it is shown once per subscription)."""
    await activity.record(
        who,
        OFFER_SHOWN,
        object_type="subscription",
        object_id=sub.id,
        after={"coupon": offer.coupon_id},
    )
