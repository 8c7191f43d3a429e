"""The proration arithmetic, on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from app.billing import proration
from app.billing.proration import TIMES

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 31, tzinfo=UTC)


def test_unused_fraction_in_seconds():
    assert proration.unused_fraction(START, END, START + timedelta(days=10)) == Fraction(2, 3)
    assert proration.unused_fraction(START, END, START) == 1
    assert proration.unused_fraction(START, END, END + timedelta(days=1)) == 0
    assert proration.unused_fraction(START, END, START - timedelta(days=1)) == 1
    assert proration.unused_fraction(END, START, START) == 0
    # Sub-second parts are ignored, as Stripe's unix timestamps do.
    at = START + timedelta(days=10, microseconds=999_999)
    assert proration.unused_fraction(START, END, at) == Fraction(2, 3)


def test_team_seats_worked_example():
    # Team $29/seat, 5 → 8 seats on day 10 of 30: f = 20/30.
    # -round(2900 * 5 * 2/3) = -round(9666.67) = -9667; round(2900 * 8 * 2/3) = 15467.
    lines = proration.proration_lines(
        old=("Team", 2900, 5),
        new=("Team", 2900, 8),
        start=START,
        end=END,
        at=START + timedelta(days=10),
    )
    assert [(line.description, line.amount) for line in lines] == [
        (f"Unused time on 5 {TIMES} Team after 11 Mar 2026", -9667),
        (f"Remaining time on 8 {TIMES} Team after 11 Mar 2026", 15467),
    ]
    assert all(line.proration for line in lines)


def test_rounding_is_half_up_away_from_zero():
    assert proration.round_half_up(Fraction(5, 2)) == 3
    assert proration.round_half_up(Fraction(-5, 2)) == -3
    assert proration.round_half_up(Fraction(7, 3)) == 2
    assert proration.prorate(1, Fraction(1, 2)) == 1
    # A single unit keeps the product name alone.
    assert proration.item_label("Starter", 1) == "Starter"


def test_add_interval_keeps_the_anchor_day():
    jan31 = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert proration.add_interval(jan31, "month") == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert proration.add_interval(jan31, "year") == datetime(2027, 1, 31, 12, tzinfo=UTC)
    assert proration.add_interval(jan31, "month", 3) == datetime(2026, 4, 30, 12, tzinfo=UTC)
    assert proration.add_interval(jan31, "week", 2) == jan31 + timedelta(days=14)
    assert proration.add_interval(jan31, "day") == jan31 + timedelta(days=1)


def test_discounts():
    assert proration.discount_amount(29000, percent_off=10, amount_off=None) == 2900
    assert proration.discount_amount(9667, percent_off=20, amount_off=None) == 1933
    assert proration.discount_amount(300, percent_off=None, amount_off=500) == 300
    assert proration.discount_amount(-100, percent_off=50, amount_off=None) == 0
    assert proration.discount_amount(1000, percent_off=None, amount_off=None) == 0


def test_coupon_descriptions():
    describe = proration.describe_coupon
    assert (
        describe(
            name=None,
            percent_off=20,
            amount_off=None,
            currency=None,
            duration="repeating",
            months=3,
        )
        == "20% off for 3 months"
    )
    assert (
        describe(
            name=None,
            percent_off=None,
            amount_off=500,
            currency="usd",
            duration="once",
            months=None,
        )
        == "$5.00 off once"
    )
    assert (
        describe(
            name=None,
            percent_off=10,
            amount_off=None,
            currency=None,
            duration="forever",
            months=None,
        )
        == "10% off forever"
    )
    assert (
        describe(
            name="Friends",
            percent_off=None,
            amount_off=None,
            currency=None,
            duration="once",
            months=None,
        )
        == "Friends"
    )
