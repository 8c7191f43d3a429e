"""Subscription semantics: creation, cancellation, schedules, payment failures."""

from __future__ import annotations

import pytest
import stripe

from tests.stripe_api import StripeAPIServer

from .conftest import JAN_1_2025

DAY = 86400
FEB_1_2025 = JAN_1_2025 + 31 * DAY
JAN_16_2025 = JAN_1_2025 + 15 * DAY


def subscribe(stripe_api: StripeAPIServer, customer: dict, price: dict, **params) -> dict:
    return stripe_api.create_subscription(
        customer=customer["id"], items=[{"price": price["id"]}], **params
    )


async def test_create_charges_the_first_period(stripe_api, stripe_client, catalog, paying_customer):
    subscription = await stripe_client.v1.subscriptions.create_async(
        {
            "customer": paying_customer["id"],
            "items": [{"price": catalog["basic"]["id"]}],
            "expand": ["latest_invoice"],
        }
    )
    assert subscription.id.startswith("sub_")
    assert subscription.status == "active"
    item = subscription["items"].data[0]
    assert item.id.startswith("si_")
    assert (item.current_period_start, item.current_period_end) == (JAN_1_2025, FEB_1_2025)
    invoice = subscription.latest_invoice
    assert invoice.id.startswith("in_")
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_create"
    assert invoice.amount_paid == 1000
    assert invoice.number.endswith("-0001")
    assert invoice.lines.data[0].description == "1 \u00d7 Basic (at $10.00 / month)"
    assert invoice.lines.data[0].id.startswith("il_")
    assert invoice.parent.subscription_details.subscription == subscription.id
    types = [e["type"] for e in stripe_api.events]
    assert types[-7:] == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]


async def test_cancel_at_period_end_keeps_the_subscription_active(
    stripe_api, stripe_client, catalog, paying_customer
):
    subscription = subscribe(stripe_api, paying_customer, catalog["basic"])
    stripe_api.advance_clock(days=10)
    scheduled = await stripe_client.v1.subscriptions.update_async(
        subscription["id"],
        {
            "cancel_at_period_end": True,
            "cancellation_details": {"feedback": "too_expensive", "comment": "Budget cuts"},
        },
    )
    assert scheduled.status == "active"
    assert scheduled.cancel_at_period_end is True
    assert scheduled.cancel_at == FEB_1_2025
    assert scheduled.canceled_at == JAN_1_2025 + 10 * DAY
    assert scheduled.cancellation_details.to_dict() == {
        "comment": "Budget cuts",
        "feedback": "too_expensive",
        "reason": "cancellation_requested",
    }
    reactivated = await stripe_client.v1.subscriptions.update_async(
        subscription["id"], {"cancel_at_period_end": False}
    )
    assert reactivated.cancel_at is None
    assert reactivated.cancellation_details.reason is None
    await stripe_client.v1.subscriptions.update_async(
        subscription["id"], {"cancel_at_period_end": True}
    )
    stripe_api.advance_clock(days=21)  # 1 Feb
    ended = await stripe_client.v1.subscriptions.retrieve_async(subscription["id"])
    assert ended.status == "canceled"
    assert ended.ended_at == FEB_1_2025
    assert (
        stripe_api.events_of("customer.subscription.deleted")[-1]["data"]["object"]["id"]
        == (subscription["id"])
    )
    invoices = await stripe_client.v1.invoices.list_async({"subscription": subscription["id"]})
    assert len(invoices.data) == 1  # no renewal
    active = await stripe_client.v1.subscriptions.list_async({"customer": paying_customer["id"]})
    assert active.data == []
    everything = await stripe_client.v1.subscriptions.list_async(
        {"customer": paying_customer["id"], "status": "all"}
    )
    assert [s.id for s in everything.data] == [subscription["id"]]


async def test_cancel_immediately(stripe_api, stripe_client, catalog, paying_customer):
    subscription = subscribe(stripe_api, paying_customer, catalog["pro"])
    stripe_api.advance_clock(days=15)
    canceled = await stripe_client.v1.subscriptions.cancel_async(
        subscription["id"],
        {
            "cancellation_details": {"feedback": "switched_service"},
            "prorate": True,
            "invoice_now": True,
            "expand": ["latest_invoice"],
        },
    )
    assert canceled.status == "canceled"
    assert canceled.canceled_at == canceled.ended_at == JAN_16_2025
    assert canceled.cancellation_details.feedback == "switched_service"
    final = canceled.latest_invoice
    assert [line.amount for line in final.lines.data] == [-1548]
    assert final.total == -1548
    assert final.amount_due == 0
    assert final.status == "paid"
    customer = await stripe_client.v1.customers.retrieve_async(paying_customer["id"])
    assert customer.balance == -1548  # credit for the next invoice
    with pytest.raises(stripe.InvalidRequestError):
        await stripe_client.v1.subscriptions.update_async(subscription["id"], {"description": "x"})
    await stripe_client.v1.subscriptions.update_async(subscription["id"], {"metadata": {"a": "b"}})


async def test_downgrade_at_period_end_with_a_schedule(
    stripe_api, stripe_client, catalog, paying_customer
):
    subscription = subscribe(stripe_api, paying_customer, catalog["pro"])
    schedule = await stripe_client.v1.subscription_schedules.create_async(
        {"from_subscription": subscription["id"]}
    )
    assert schedule.id.startswith("sub_sched_")
    assert schedule.status == "active"
    assert schedule.phases[0].end_date == FEB_1_2025
    phase = schedule.phases[0]
    schedule = await stripe_client.v1.subscription_schedules.update_async(
        schedule.id,
        {
            "end_behavior": "release",
            "phases": [
                {
                    "items": [{"price": catalog["pro"]["id"]}],
                    "start_date": phase.start_date,
                    "end_date": phase.end_date,
                },
                {
                    "items": [{"price": catalog["basic"]["id"]}],
                    "duration": {"interval": "month", "interval_count": 1},
                },
            ],
        },
    )
    assert schedule.phases[1].end_date == FEB_1_2025 + 28 * DAY
    upcoming = await stripe_client.v1.invoices.create_preview_async(
        {"subscription": subscription["id"]}
    )
    assert upcoming.amount_due == 1000  # the next period is already Basic

    stripe_api.advance_clock(days=31)  # 1 Feb: phase 2
    current = await stripe_client.v1.subscriptions.retrieve_async(
        subscription["id"], {"expand": ["latest_invoice", "schedule"]}
    )
    assert current["items"].data[0].price.id == catalog["basic"]["id"]
    assert current.latest_invoice.amount_paid == 1000
    assert current.schedule.current_phase.start_date == FEB_1_2025

    stripe_api.advance_clock(days=28)  # 1 Mar: schedule done, released
    released = await stripe_client.v1.subscription_schedules.retrieve_async(schedule.id)
    assert released.status == "released"
    assert released.released_subscription == subscription["id"]
    after = await stripe_client.v1.subscriptions.retrieve_async(subscription["id"])
    assert after.schedule is None
    assert after.status == "active"


async def test_declined_payments(stripe_api, stripe_client, catalog):
    customer = stripe_api.create_customer()
    stripe_api.create_payment_method(
        customer["id"], card="pm_card_chargeCustomerFail", default=True
    )
    with pytest.raises(stripe.CardError):
        await stripe_client.v1.subscriptions.create_async(
            {
                "customer": customer["id"],
                "items": [{"price": catalog["basic"]["id"]}],
                "payment_behavior": "error_if_incomplete",
            }
        )
    assert stripe_api.state.table("subscription") == {}

    subscription = await stripe_client.v1.subscriptions.create_async(
        {"customer": customer["id"], "items": [{"price": catalog["basic"]["id"]}]}
    )
    assert subscription.status == "incomplete"
    with pytest.raises(stripe.CardError) as caught:
        await stripe_client.v1.invoices.pay_async(subscription.latest_invoice)
    assert caught.value.http_status == 402
    assert caught.value.code == "card_declined"
    invoice = await stripe_client.v1.invoices.retrieve_async(subscription.latest_invoice)
    assert invoice.status == "open"
    assert invoice.attempt_count == 2

    good = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", {"customer": customer["id"]}
    )
    paid = await stripe_client.v1.invoices.pay_async(invoice.id, {"payment_method": good.id})
    assert paid.status == "paid"
    now_active = await stripe_client.v1.subscriptions.retrieve_async(subscription.id)
    assert now_active.status == "active"
    with pytest.raises(stripe.InvalidRequestError):
        await stripe_client.v1.invoices.pay_async(invoice.id)

    stripe_api.advance_clock(days=31)  # renewal with the failing default card
    past_due = await stripe_client.v1.subscriptions.retrieve_async(subscription.id)
    assert past_due.status == "past_due"
    assert "invoice.payment_failed" in [e["type"] for e in stripe_api.events]


async def test_trial_end_now_and_pause_collection(
    stripe_api, stripe_client, catalog, paying_customer
):
    trialing = await stripe_client.v1.subscriptions.create_async(
        {
            "customer": paying_customer["id"],
            "items": [{"price": catalog["pro"]["id"]}],
            "trial_period_days": 14,
            "expand": ["latest_invoice"],
        }
    )
    assert trialing.status == "trialing"
    assert trialing.trial_end == JAN_1_2025 + 14 * DAY
    assert trialing.latest_invoice.amount_due == 0
    assert trialing.latest_invoice.status == "paid"
    stripe_api.advance_clock(days=3)
    ended = await stripe_client.v1.subscriptions.update_async(
        trialing.id, {"trial_end": "now", "expand": ["latest_invoice"]}
    )
    assert ended.status == "active"
    assert ended.trial_end == JAN_1_2025 + 3 * DAY
    assert ended.latest_invoice.amount_paid == 3000
    paused = await stripe_client.v1.subscriptions.update_async(
        trialing.id, {"pause_collection": {"behavior": "void"}}
    )
    assert paused.pause_collection.behavior == "void"
    assert paused.status == "active"
    stripe_api.advance_clock(days=31)
    voided = await stripe_client.v1.invoices.list_async(
        {"subscription": trialing.id, "status": "void"}
    )
    assert len(voided.data) == 1
    resumed = await stripe_client.v1.subscriptions.update_async(
        trialing.id, {"pause_collection": ""}
    )
    assert resumed.pause_collection is None


async def test_discounts(stripe_api, stripe_client, catalog, paying_customer):
    coupon = stripe_api.create_coupon(percent_off=20, duration="forever")
    promo = stripe_api.create_promotion_code(
        promotion={"type": "coupon", "coupon": coupon["id"]}, code="SAVE20"
    )
    subscription = subscribe(stripe_api, paying_customer, catalog["pro"])
    updated = await stripe_client.v1.subscriptions.update_async(
        subscription["id"],
        {"discounts": [{"promotion_code": promo["id"]}], "expand": ["discounts"]},
    )
    discount = updated.discounts[0]
    assert discount.id.startswith("di_")
    assert discount.promotion_code == promo["id"]
    assert discount.source.coupon == coupon["id"]
    upcoming = await stripe_client.v1.invoices.create_preview_async(
        {"subscription": subscription["id"]}
    )
    assert upcoming.subtotal == 3000
    assert upcoming.total == 2400
    assert upcoming.total_discount_amounts[0].amount == 600
    cleared = await stripe_client.v1.subscriptions.update_async(
        subscription["id"], {"discounts": ""}
    )
    assert cleared.discounts == []


async def test_trial_without_card_pauses_then_resumes(stripe_api, stripe_client, catalog):
    customer = stripe_api.create_customer()
    trialing = await stripe_client.v1.subscriptions.create_async(
        {
            "customer": customer["id"],
            "items": [{"price": catalog["basic"]["id"]}],
            "trial_period_days": 7,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )
    assert trialing.status == "trialing"
    with pytest.raises(stripe.InvalidRequestError):
        await stripe_client.v1.subscriptions.resume_async(trialing.id)
    stripe_api.advance_clock(days=7)
    paused = await stripe_client.v1.subscriptions.retrieve_async(trialing.id)
    assert paused.status == "paused"
    assert stripe_api.events_of("customer.subscription.paused")
    stripe_api.create_payment_method(customer["id"], card="pm_card_visa", default=True)
    resumed = await stripe_client.v1.subscriptions.resume_async(
        trialing.id, {"expand": ["latest_invoice"]}
    )
    assert resumed.status == "active"
    assert resumed.latest_invoice.amount_paid == 1000
    assert resumed["items"].data[0].current_period_start == JAN_1_2025 + 7 * DAY
