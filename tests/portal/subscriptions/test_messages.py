"""What the customer is told: a discount's terms, the message after a plan change."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from app.billing import queries
from app.portal.subscriptions import messages
from tests.portal.subscriptions.examples import NOW, make_sub


def test_discount_terms() -> None:
    def discount(**values):
        base = {
            "coupon_id": "c",
            "name": None,
            "percent_off": None,
            "amount_off": None,
            "currency": None,
            "duration": "once",
            "duration_in_months": None,
        }
        return queries.Discount(**{**base, **values})

    three = discount(percent_off=20, duration="repeating", duration_in_months=3)
    assert messages.discount_terms(three) == "20% off for 3 months"
    one = discount(percent_off=20, duration="repeating", duration_in_months=1)
    assert messages.discount_terms(one) == "20% off for 1 month"
    assert messages.discount_terms(discount(amount_off=1000, currency="usd")) == (
        "$10.00 off your next invoice"
    )
    assert messages.discount_terms(discount(percent_off=5, duration="forever")) == (
        "5% off for as long as you stay subscribed"
    )
    assert discount(amount_off=1000, currency="usd").apply(500, "usd") == 0
    assert discount(amount_off=1000, currency="eur").apply(500, "usd") == 500


def test_change_message_names_the_day_a_scheduled_change_starts() -> None:
    sub = make_sub()
    assert messages.change_message(sub, None) == "Your plan was changed."
    pending = queries.PendingChange(
        starts=NOW + timedelta(days=20),
        price_id="price_starter_month",
        product_name="Starter",
        unit_label=None,
        unit_amount=900,
        currency="usd",
        interval="month",
        interval_count=1,
        quantity=1,
    )
    scheduled = msgspec.structs.replace(sub, pending=pending)
    assert messages.change_message(scheduled, "UTC") == "Your plan will change on 16 Dec 2026."
    assert messages.change_message(sub, "UTC", scheduled=True).startswith(
        "Your plan will change on "
    )
