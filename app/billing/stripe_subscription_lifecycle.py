"""Subscription lifecycle on Stripe: cancel, renew, the retention coupon, pause and resume.

Each action checks the subscription in the mirror first (``live_subscription``: it must exist
and not have ended), releases a pending schedule where the action makes it moot, and writes what
Stripe answers (see ``app.billing.stripe_actions`` for the frame every write runs in).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe

from app.billing.gateway import CancelProration, GatewayError
from app.billing.stripe_actions import Keys, Outcome, StripeActions
from app.billing.stripe_errors import coupon_error
from app.billing.stripe_fetch import SUBSCRIPTION_EXPAND, fetch_subscription
from app.billing.stripe_plan_changes import ENDED
from app.billing.tables import Subscription
from app.configuration.features import CANCELLATION_REASONS

COMMENT_LIMIT = 5000  # Stripe's limit on cancellation_details.comment


async def _mirror_subscription(subscription_id: str) -> Subscription:
    sub = await Subscription.objects().where(Subscription.id == subscription_id).first()
    if sub is None:
        raise GatewayError("That subscription is not on your account.", code="resource_missing")
    return sub


async def live_subscription(subscription_id: str, verb: str) -> Subscription:
    sub = await _mirror_subscription(subscription_id)
    if sub.status in ENDED:
        raise GatewayError(
            f"This subscription has ended, so it can't be {verb}.", code="subscription_ended"
        )
    return sub


async def cancel_subscription(
    actions: StripeActions,
    subscription_id: str,
    *,
    at_period_end: bool,
    proration_behavior: CancelProration,
    reason: str | None,
    comment: str | None,
    idempotency_key: str,
) -> None:
    """At period end: ``subscriptions.update(cancel_at_period_end=true,
    cancellation_details)``. Now: ``subscriptions.cancel(prorate=…, cancellation_details)``
    (``create_prorations`` leaves a pending credit for the unused time). A pending schedule
    is released first."""
    feedback = (reason or "").strip() or None
    note = (comment or "").strip() or None
    if feedback is not None and feedback not in CANCELLATION_REASONS:
        raise GatewayError("Choose a reason from the list.", code="invalid_reason", field="reason")
    if note is not None and len(note) > COMMENT_LIMIT:
        raise GatewayError(
            f"Use at most {COMMENT_LIMIT} characters.", code="too_long", field="comment"
        )
    details = {k: v for k, v in (("feedback", feedback), ("comment", note)) if v is not None}

    async def work(keys: Keys) -> Outcome:
        sub = await live_subscription(subscription_id, "canceled")
        outcome = Outcome(sub.customer, result={"subscription": subscription_id})
        await actions.release_schedule(sub.schedule, keys, outcome.batch)
        if at_period_end:
            params: dict[str, Any] = {"cancel_at_period_end": True}
            if details:
                params["cancellation_details"] = details
            outcome.batch.add(await actions.update_subscription(subscription_id, params, keys))
            return outcome
        params = {
            "prorate": proration_behavior == "create_prorations",
            "invoice_now": False,
            "expand": SUBSCRIPTION_EXPAND,
        }
        if details:
            params["cancellation_details"] = details
        try:
            canceled = await actions.client.v1.subscriptions.cancel_async(
                subscription_id, params, keys("cancel")
            )
            fresh = await actions.fresh_subscription(canceled)
        except stripe.InvalidRequestError:
            # A retry after a timeout: the first attempt may have canceled it already.
            fresh = await fetch_subscription(actions.client, subscription_id)
            if fresh.get("status") not in ENDED:
                raise
        outcome.batch.add(fresh)
        return outcome

    await actions.intent(
        idempotency_key,
        "cancel_subscription",
        {
            "subscription": subscription_id,
            "at_period_end": at_period_end,
            "proration_behavior": proration_behavior,
            "reason": feedback,
            "comment": note,
        },
        "Your subscription couldn't be canceled.",
        work,
    )


async def renew_subscription(
    actions: StripeActions, subscription_id: str, *, idempotency_key: str
) -> None:
    """``subscriptions.update(cancel_at_period_end=false)`` (or ``cancel_at=""`` when a
    cancellation date was set)."""

    async def work(keys: Keys) -> Outcome:
        sub = await live_subscription(subscription_id, "renewed")
        params: dict[str, Any] = (
            {"cancel_at": ""}
            if sub.cancel_at is not None and not sub.cancel_at_period_end
            else {"cancel_at_period_end": False}
        )
        outcome = Outcome(sub.customer, result={"subscription": subscription_id})
        outcome.batch.add(await actions.update_subscription(subscription_id, params, keys))
        return outcome

    await actions.intent(
        idempotency_key,
        "renew_subscription",
        {"subscription": subscription_id},
        "Your subscription couldn't be renewed.",
        work,
    )


async def apply_coupon(
    actions: StripeActions, subscription_id: str, coupon_id: str, *, idempotency_key: str
) -> None:
    """``subscriptions.update(discounts=[{coupon}])`` (replaces the current discount)."""

    async def work(keys: Keys) -> Outcome:
        sub = await live_subscription(subscription_id, "discounted")
        outcome = Outcome(sub.customer, result={"subscription": subscription_id})
        params = {"discounts": [{"coupon": coupon_id}]}
        outcome.batch.add(await actions.update_subscription(subscription_id, params, keys))
        outcome.result["coupon"] = coupon_id
        return outcome

    await actions.intent(
        idempotency_key,
        "apply_coupon",
        {"subscription": subscription_id, "coupon": coupon_id},
        "The offer couldn't be applied.",
        work,
        override=coupon_error,
    )


async def pause_subscription(
    actions: StripeActions,
    subscription_id: str,
    *,
    resumes_at: datetime | None,
    idempotency_key: str,
) -> None:
    """``subscriptions.update(pause_collection={behavior: void, resumes_at})``."""
    if resumes_at is not None and resumes_at <= datetime.now(UTC):
        raise GatewayError(
            "Choose a date in the future.", code="invalid_resumes_at", field="resumes_at"
        )

    async def work(keys: Keys) -> Outcome:
        sub = await live_subscription(subscription_id, "paused")
        pause: dict[str, Any] = {"behavior": "void"}
        if resumes_at is not None:
            pause["resumes_at"] = int(resumes_at.timestamp())
        outcome = Outcome(sub.customer, result={"subscription": subscription_id})
        outcome.batch.add(
            await actions.update_subscription(subscription_id, {"pause_collection": pause}, keys)
        )
        return outcome

    await actions.intent(
        idempotency_key,
        "pause_subscription",
        {"subscription": subscription_id, "resumes_at": resumes_at},
        "Your subscription couldn't be paused.",
        work,
    )


async def resume_subscription(
    actions: StripeActions, subscription_id: str, *, idempotency_key: str
) -> None:
    """``subscriptions.update(pause_collection="")``; a subscription in Stripe's ``paused``
    status (a trial that ended without a card) goes through ``subscriptions.resume``."""

    async def work(keys: Keys) -> Outcome:
        sub = await live_subscription(subscription_id, "resumed")
        outcome = Outcome(sub.customer, result={"subscription": subscription_id})
        if sub.status == "paused":
            resumed = await actions.client.v1.subscriptions.resume_async(
                subscription_id, {"expand": SUBSCRIPTION_EXPAND}, keys("resume")
            )
            outcome.batch.add(await actions.fresh_subscription(resumed))
        else:
            outcome.batch.add(
                await actions.update_subscription(subscription_id, {"pause_collection": ""}, keys)
            )
        return outcome

    await actions.intent(
        idempotency_key,
        "resume_subscription",
        {"subscription": subscription_id},
        "Your subscription couldn't be resumed.",
        work,
    )
