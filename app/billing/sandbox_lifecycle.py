"""Subscription lifecycle in the sandbox: cancel, renew, retention coupon, pause and resume.

Each function is the ``work`` of one idempotent gateway call (inside its write transaction) and
returns what the idempotency record stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app import clock
from app.billing import sandbox_store as store
from app.billing.gateway import CancelProration, GatewayError
from app.billing.proration import proration_lines
from app.billing.sandbox_changes import release_schedule
from app.billing.tables import Subscription, SubscriptionItem
from app.configuration.features import CANCELLATION_REASONS

COMMENT_LIMIT = 5000  # Stripe's limit on cancellation_details.comment


def cancellation_details(reason: str | None, comment: str | None) -> tuple[str | None, str | None]:
    """The feedback code (one of Stripe's eight, or None) and the trimmed comment; checked
    before the transaction opens."""
    feedback = (reason or "").strip() or None
    note = (comment or "").strip() or None
    if feedback is not None and feedback not in CANCELLATION_REASONS:
        raise GatewayError("Choose a reason from the list.", code="invalid_reason", field="reason")
    if note is not None and len(note) > COMMENT_LIMIT:
        raise GatewayError(
            f"Use at most {COMMENT_LIMIT} characters.", code="too_long", field="comment"
        )
    return feedback, note


async def live_subscription(subscription_id: str, verb: str) -> Subscription:
    sub = await store.subscription(subscription_id, lock=True)
    if sub.status in store.ENDED:
        raise GatewayError(
            f"This subscription has ended, so it can't be {verb}.", code="subscription_ended"
        )
    return sub


async def unused_time_credit(sub: Subscription, now: datetime) -> list[store.Charge]:
    """Credit lines for the unused part of the current period (an immediate cancel with
    ``create_prorations``); none during a trial, which was free."""
    if sub.status == "trialing":
        return []
    charges = []
    for item in await SubscriptionItem.objects().where(SubscriptionItem.subscription == sub.id):
        price, product = await store.price_and_product(item.price)
        for line in proration_lines(
            old=(product.name, price.unit_amount or 0, item.quantity),
            new=None,
            start=sub.current_period_start,
            end=sub.current_period_end,
            at=now,
        ):
            charges.append(store.Charge(line, price.id, item.quantity))
    return charges


async def cancel(
    subscription_id: str,
    *,
    at_period_end: bool,
    proration_behavior: CancelProration,
    feedback: str | None,
    comment: str | None,
) -> dict[str, Any]:
    """At period end: ``cancel_at_period_end``, ``cancel_at`` = period end, ``canceled_at`` = now;
    the status stays. Immediately: ``canceled`` now (``canceled_at`` = ``ended_at`` = now), and
    with ``create_prorations`` the unused time becomes a pending credit item. Either way
    ``cancellation_details`` records the reason and comment and a pending schedule is
    released."""
    now = clock.now()
    sub = await live_subscription(subscription_id, "canceled")
    await release_schedule(sub, now)
    sub.cancellation_details_reason = "cancellation_requested"
    sub.cancellation_details_feedback = feedback
    sub.cancellation_details_comment = comment
    if at_period_end:
        sub.cancel_at_period_end = True
        sub.cancel_at = sub.current_period_end
        sub.canceled_at = now
    else:
        if proration_behavior == "create_prorations":
            credit = await unused_time_credit(sub, now)
            await store.add_pending_items(sub.customer, sub.id, sub.currency, credit, now)
        sub.status = "canceled"
        sub.cancel_at_period_end = False
        sub.cancel_at = None
        sub.canceled_at = sub.ended_at = now
    await sub.save()
    return {"subscription": sub.id, "status": sub.status}


async def renew(subscription_id: str) -> dict[str, Any]:
    """Undo a cancel-at-period-end while the subscription has not ended: the flags, dates and
    cancellation details are cleared."""
    sub = await live_subscription(subscription_id, "renewed")
    sub.cancel_at_period_end = False
    sub.cancel_at = sub.canceled_at = None
    sub.cancellation_details_reason = None
    sub.cancellation_details_feedback = sub.cancellation_details_comment = None
    await sub.save()
    return {"subscription": sub.id}


async def apply_coupon(subscription_id: str, coupon_id: str) -> dict[str, Any]:
    """Put a valid coupon on the subscription (it replaces the current discount)."""
    sub = await live_subscription(subscription_id, "discounted")
    coupon = await store.coupon(coupon_id)
    if (
        coupon is None
        or not coupon.valid
        or (coupon.amount_off and (coupon.currency or "").lower() != sub.currency.lower())
    ):
        raise GatewayError("This offer is no longer available.", code="coupon_invalid")
    sub.discount_coupon = coupon.id
    await sub.save()
    return {"subscription": sub.id, "coupon": coupon.id}


async def pause(subscription_id: str, resumes_at: datetime | None) -> dict[str, Any]:
    """``pause_collection = {behavior: void, resumes_at}``; the status does not change."""
    sub = await live_subscription(subscription_id, "paused")
    if resumes_at is not None and resumes_at <= clock.now():
        raise GatewayError(
            "Choose a date in the future.", code="invalid_resumes_at", field="resumes_at"
        )
    sub.pause_collection_behavior = "void"
    sub.pause_collection_resumes_at = resumes_at
    await sub.save()
    return {"subscription": sub.id}


async def resume(subscription_id: str) -> dict[str, Any]:
    sub = await live_subscription(subscription_id, "resumed")
    sub.pause_collection_behavior = None
    sub.pause_collection_resumes_at = None
    await sub.save()
    return {"subscription": sub.id}
