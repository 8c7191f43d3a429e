"""Time-based proration on mid-period changes, checked against worked examples."""

from __future__ import annotations

from tests.stripe_api import StripeAPIServer

from .conftest import JAN_1_2025

DAY = 86400
FEB_1_2025 = JAN_1_2025 + 31 * DAY
JAN_16_2025 = JAN_1_2025 + 15 * DAY


def subscribe(stripe_api: StripeAPIServer, customer: dict, price: dict, **params) -> dict:
    return stripe_api.create_subscription(
        customer=customer["id"], items=[{"price": price["id"]}], **params
    )


async def test_mid_period_upgrade_prorates_by_time(
    stripe_api, stripe_client, catalog, paying_customer
):
    # Worked example: Basic costs $10.00/month, Pro $30.00/month.  The period runs from
    # 1 Jan 2025 00:00 to 1 Feb 2025 00:00 UTC (31 days = 2,678,400 s).  On 16 Jan 00:00,
    # 16 days (1,382,400 s) remain, i.e. 16/31 of the period:
    #   credit for unused Basic: -1000 * 16/31 = -516.13 -> -516
    #   charge for remaining Pro:  3000 * 16/31 = 1548.39 -> 1548
    #   amount due now (always_invoice): 1548 - 516 = 1032
    subscription = subscribe(stripe_api, paying_customer, catalog["basic"])
    item_id = subscription["items"]["data"][0]["id"]
    stripe_api.advance_clock(days=15)
    change = {"items": [{"id": item_id, "price": catalog["pro"]["id"]}]}

    preview = await stripe_client.v1.invoices.create_preview_async(
        {
            "customer": paying_customer["id"],
            "subscription": subscription["id"],
            "subscription_details": {
                **change,
                "proration_behavior": "always_invoice",
                "proration_date": JAN_16_2025,
            },
        }
    )
    assert preview.id.startswith("upcoming_in_")
    assert [line.amount for line in preview.lines.data] == [-516, 1548]
    assert preview.amount_due == 1032
    assert stripe_api.get(preview.id) is None  # nothing persisted

    updated = await stripe_client.v1.subscriptions.update_async(
        subscription["id"],
        {
            **change,
            "proration_behavior": "always_invoice",
            "proration_date": JAN_16_2025,
            "expand": ["latest_invoice"],
        },
    )
    invoice = updated.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    assert invoice.status == "paid"
    assert invoice.amount_paid == 1032
    lines = invoice.lines.data
    assert [line.amount for line in lines] == [-516, 1548]
    assert [line.description for line in lines] == [
        "Unused time on Basic after 16 Jan 2025",
        "Remaining time on Pro after 16 Jan 2025",
    ]
    assert all(line.parent.subscription_item_details.proration for line in lines)
    assert all((line.period.start, line.period.end) == (JAN_16_2025, FEB_1_2025) for line in lines)
    assert updated["items"].data[0].id == item_id
    assert updated["items"].data[0].price.id == catalog["pro"]["id"]
    event = stripe_api.events_of("customer.subscription.updated")[-1]
    assert (
        event["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"]
        == (catalog["basic"]["id"])
    )


async def test_create_prorations_wait_for_the_next_invoice(
    stripe_api, stripe_client, catalog, paying_customer
):
    subscription = subscribe(stripe_api, paying_customer, catalog["basic"])
    stripe_api.advance_clock(days=15)
    updated = await stripe_client.v1.subscriptions.update_async(
        subscription["id"],
        {
            "items": [
                {"id": subscription["items"]["data"][0]["id"], "price": catalog["pro"]["id"]}
            ],
            "proration_behavior": "create_prorations",
        },
    )
    assert updated.latest_invoice == subscription["latest_invoice"]  # nothing invoiced yet
    upcoming = await stripe_client.v1.invoices.create_preview_async(
        {"subscription": subscription["id"]}
    )
    assert [line.amount for line in upcoming.lines.data] == [3000, -516, 1548]
    assert upcoming.amount_due == 4032
    assert (upcoming.period_start, upcoming.period_end) == (JAN_1_2025, FEB_1_2025)

    stripe_api.advance_clock(days=16)  # 1 Feb: renewal
    renewed = await stripe_client.v1.subscriptions.retrieve_async(
        subscription["id"], {"expand": ["latest_invoice"]}
    )
    assert renewed.latest_invoice.billing_reason == "subscription_cycle"
    assert renewed.latest_invoice.amount_paid == 4032
    assert renewed["items"].data[0].current_period_start == FEB_1_2025
    assert renewed["items"].data[0].current_period_end == FEB_1_2025 + 28 * DAY


async def test_proration_none_and_quantity_changes(
    stripe_api, stripe_client, catalog, paying_customer
):
    subscription = subscribe(stripe_api, paying_customer, catalog["basic"])
    item_id = subscription["items"]["data"][0]["id"]
    stripe_api.advance_clock(days=15)
    await stripe_client.v1.subscriptions.update_async(
        subscription["id"],
        {"items": [{"id": item_id, "quantity": 3}], "proration_behavior": "none"},
    )
    assert stripe_api.state.table("invoiceitem") == {}
    preview = await stripe_client.v1.invoices.create_preview_async(
        {
            "subscription": subscription["id"],
            "subscription_details": {
                "items": [{"id": item_id, "quantity": 2}],
                "proration_date": JAN_16_2025,
            },
        }
    )
    # 3 seats -> 2 seats on 16 Jan: credit 3 x 1000 x 16/31 = 1548, charge 2 x 1000 x 16/31 = 1032
    assert [line.amount for line in preview.lines.data] == [2000, -1548, 1032]
    assert preview.lines.data[1].description == "Unused time on 3 \u00d7 Basic after 16 Jan 2025"


async def test_upgrade_to_yearly_resets_the_billing_anchor(
    stripe_api, stripe_client, catalog, paying_customer
):
    subscription = subscribe(stripe_api, paying_customer, catalog["pro"])
    stripe_api.advance_clock(days=15)
    updated = await stripe_client.v1.subscriptions.update_async(
        subscription["id"],
        {
            "items": [
                {"id": subscription["items"]["data"][0]["id"], "price": catalog["pro_yearly"]["id"]}
            ],
            "expand": ["latest_invoice"],
        },
    )
    item = updated["items"].data[0]
    assert item.current_period_start == JAN_16_2025 == updated.billing_cycle_anchor
    assert item.current_period_end == JAN_16_2025 + 365 * DAY
    # full year 30000 plus credit for 16/31 of the monthly Pro price (-1548)
    assert [line.amount for line in updated.latest_invoice.lines.data] == [30000, -1548]
    assert updated.latest_invoice.amount_paid == 28452
