"""Cancel, renew, retention coupons, pause and resume in the sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.billing.gateway import GatewayError
from app.billing.proration import TIMES
from app.billing.tables import InvoiceItem, SubscriptionSchedule
from tests.billing.sandbox_world import NOW, PERIOD_END, add_coupon, key

pytestmark = pytest.mark.usefixtures("db")


def cancel_args(**overrides):
    return {
        "at_period_end": True,
        "proration_behavior": "none",
        "reason": "too_expensive",
        "comment": "  Budget cuts this quarter.  ",
        **overrides,
    }


async def test_cancel_at_period_end_keeps_the_subscription_until_then(world):
    await world.gateway.cancel_subscription(
        world.subscription, **cancel_args(), idempotency_key=key()
    )
    sub = await world.sub()
    assert sub.status == "active"
    assert sub.cancel_at_period_end
    assert sub.cancel_at == PERIOD_END
    assert sub.canceled_at == NOW
    assert sub.ended_at is None
    assert sub.cancellation_details_reason == "cancellation_requested"
    assert sub.cancellation_details_feedback == "too_expensive"
    assert sub.cancellation_details_comment == "Budget cuts this quarter."

    await world.gateway.renew_subscription(world.subscription, idempotency_key=key())
    sub = await world.sub()
    assert not sub.cancel_at_period_end
    assert sub.cancel_at is None
    assert sub.canceled_at is None
    assert sub.cancellation_details_feedback is None
    assert sub.status == "active"


async def test_cancel_immediately_with_a_credit_for_unused_time(world):
    # 5 * Team ($29) with 20 of 30 days unused: -round(14500 * 2/3) = -9667 pending credit.
    args = cancel_args(at_period_end=False, proration_behavior="create_prorations", comment="")
    await world.gateway.cancel_subscription(world.subscription, **args, idempotency_key=key())
    sub = await world.sub()
    assert (sub.status, sub.canceled_at, sub.ended_at) == ("canceled", NOW, NOW)
    assert not sub.cancel_at_period_end
    assert sub.cancellation_details_comment is None
    [credit] = await InvoiceItem.objects()
    assert (credit.amount, credit.proration, credit.invoice) == (-9667, True, None)
    assert credit.description == f"Unused time on 5 {TIMES} Team after 11 Mar 2026"

    with pytest.raises(GatewayError, match="ended"):
        await world.gateway.renew_subscription(world.subscription, idempotency_key=key())
    with pytest.raises(GatewayError, match="ended"):
        await world.gateway.cancel_subscription(
            world.subscription, **cancel_args(), idempotency_key=key()
        )


async def test_cancel_immediately_without_prorations(world):
    args = cancel_args(at_period_end=False, reason=None, comment=None)
    await world.gateway.cancel_subscription(world.subscription, **args, idempotency_key=key())
    sub = await world.sub()
    assert sub.status == "canceled"
    assert sub.cancellation_details_feedback is None
    assert await InvoiceItem.count() == 0


async def test_cancel_releases_a_scheduled_change(world):
    await world.gateway.change_subscription(
        world.subscription,
        price_id=world.prices["starter_month"],
        quantity=1,
        proration_behavior="none",
        schedule_at_period_end=True,
        trial_update_behavior="end_trial",
        idempotency_key=key(),
    )
    schedule_id = (await world.sub()).schedule
    assert schedule_id
    await world.gateway.cancel_subscription(
        world.subscription, **cancel_args(), idempotency_key=key()
    )
    assert (await world.sub()).schedule is None
    schedule = (
        await SubscriptionSchedule.objects().where(SubscriptionSchedule.id == schedule_id).first()
    )
    assert schedule.status == "released"


async def test_cancel_rejects_unknown_reasons(world):
    with pytest.raises(GatewayError) as raised:
        await world.gateway.cancel_subscription(
            world.subscription, **cancel_args(reason="meh"), idempotency_key=key()
        )
    assert raised.value.field == "reason"
    assert not (await world.sub()).cancel_at_period_end


async def test_retention_coupon(world):
    await add_coupon("STAY20", percent_off=20, duration="repeating")
    await world.gateway.apply_coupon(world.subscription, "STAY20", idempotency_key=key())
    assert (await world.sub()).discount_coupon == "STAY20"
    preview = await world.gateway.preview_subscription_change(
        world.subscription,
        price_id=world.prices["team_month"],
        quantity=5,
        proration_behavior="none",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
    )
    assert preview.next_invoice_amount == 14500 - 2900
    assert preview.discount_description == "20% off for 3 months"

    with pytest.raises(GatewayError, match="no longer available"):
        await world.gateway.apply_coupon(world.subscription, "MISSING", idempotency_key=key())


async def test_pause_and_resume_collection(world):
    resumes = NOW + timedelta(days=30)
    await world.gateway.pause_subscription(
        world.subscription, resumes_at=resumes, idempotency_key=key()
    )
    sub = await world.sub()
    assert (sub.pause_collection_behavior, sub.pause_collection_resumes_at) == ("void", resumes)
    assert sub.status == "active"
    await world.gateway.resume_subscription(world.subscription, idempotency_key=key())
    sub = await world.sub()
    assert sub.pause_collection_behavior is None
    assert sub.pause_collection_resumes_at is None

    with pytest.raises(GatewayError) as raised:
        await world.gateway.pause_subscription(
            world.subscription, resumes_at=NOW - timedelta(days=1), idempotency_key=key()
        )
    assert raised.value.field == "resumes_at"


async def test_unknown_subscription(world):
    with pytest.raises(GatewayError, match="couldn't find"):
        await world.gateway.renew_subscription("sub_missing", idempotency_key=key())
