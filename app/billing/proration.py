"""The arithmetic of plan changes, as Stripe does it (pure functions, no database).

Time-based proration: a change at ``t`` inside the period ``[start, end)`` leaves the unused
fraction ``f = (end - t) / (end - start)``, measured in whole seconds. The old plan is credited
``-round(old_unit * old_quantity * f)`` ("Unused time on …") and the new one charged
``round(new_unit * new_quantity * f)`` ("Remaining time on …"); each line is rounded on its own to
the minor unit, halves away from zero.

Worked example: Team at $29/seat, 5 seats, a 30-day period, 8 seats from day 10:
f = 20/30, credit -round(2900 * 5 * 2/3) = -9667, charge round(2900 * 8 * 2/3) = 15467.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from app.billing.demo_data import add_months
from app.billing.gateway import PreviewLine
from app.web.formatting import money

TIMES = "\N{MULTIPLICATION SIGN}"


def unused_fraction(start: datetime, end: datetime, at: datetime) -> Fraction:
    """The share of ``[start, end)`` still ahead at ``at`` (clamped to 0..1), in whole seconds."""
    total = int(end.timestamp()) - int(start.timestamp())
    if total <= 0:
        return Fraction(0)
    left = int(end.timestamp()) - int(at.timestamp())
    return Fraction(min(max(left, 0), total), total)


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero (Stripe's rounding of prorations)."""
    decimal = Decimal(abs(value.numerator)) / Decimal(value.denominator)
    rounded = int(decimal.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return rounded if value >= 0 else -rounded


def prorate(amount: int, fraction: Fraction) -> int:
    return round_half_up(amount * fraction)


def add_interval(moment: datetime, interval: str, count: int = 1) -> datetime:
    """One billing period after ``moment``; months keep the anchor day (clamped), like Stripe."""
    if interval == "year":
        return add_months(moment, 12 * count)
    if interval == "month":
        return add_months(moment, count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    return moment + timedelta(days=count)


def description_date(moment: datetime) -> str:
    """Stripe's date in proration descriptions, e.g. ``16 Jan 2025`` (UTC)."""
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y}"


def item_label(product_name: str, quantity: int) -> str:
    return f"{quantity} {TIMES} {product_name}" if quantity != 1 else product_name


def proration_lines(
    *,
    old: tuple[str, int, int],
    new: tuple[str, int, int] | None,
    start: datetime,
    end: datetime,
    at: datetime,
) -> list[PreviewLine]:
    """The credit for the unused time on ``old`` and (unless ``new`` is None, as when the billing
    cycle resets or a subscription is canceled) the charge for the remaining time on ``new``.
    ``old`` / ``new`` are (product name, unit amount, quantity)."""
    fraction = unused_fraction(start, end, at)
    if fraction == 0:
        return []
    when = description_date(at)
    name, unit, quantity = old
    lines = [
        PreviewLine(
            description=f"Unused time on {item_label(name, quantity)} after {when}",
            amount=-prorate(unit * quantity, fraction),
            proration=True,
            period_start=at,
            period_end=end,
        )
    ]
    if new is not None:
        name, unit, quantity = new
        lines.append(
            PreviewLine(
                description=f"Remaining time on {item_label(name, quantity)} after {when}",
                amount=prorate(unit * quantity, fraction),
                proration=True,
                period_start=at,
                period_end=end,
            )
        )
    return lines


def period_line(
    *,
    product_name: str,
    unit_amount: int,
    quantity: int,
    currency: str,
    interval: str,
    start: datetime,
    end: datetime,
) -> PreviewLine:
    """A full period of a plan, as on a regular invoice: "5 x Team (at $29.00 / month)" with
    Stripe's multiplication sign for the x."""
    unit = money(unit_amount, currency)
    return PreviewLine(
        description=f"{quantity} {TIMES} {product_name} (at {unit} / {interval})",
        amount=unit_amount * quantity,
        period_start=start,
        period_end=end,
    )


def discount_amount(
    subtotal: int, *, percent_off: int | float | None, amount_off: int | None
) -> int:
    """What a coupon takes off an invoice subtotal: a percentage (rounded half up) or a fixed
    amount, never more than the subtotal and nothing off a zero or negative subtotal."""
    if subtotal <= 0:
        return 0
    if percent_off:
        off = round_half_up(Fraction(subtotal) * Fraction(str(percent_off)) / 100)
    else:
        off = amount_off or 0
    return max(0, min(off, subtotal))


def describe_coupon(
    *,
    name: str | None,
    percent_off: int | float | None,
    amount_off: int | None,
    currency: str | None,
    duration: str,
    months: int | None,
) -> str:
    """``20% off for 3 months``, ``$5.00 off once``, ``10% off forever`` (or the coupon's name)."""
    if percent_off:
        value = f"{percent_off:g}% off"
    elif amount_off and currency:
        value = f"{money(amount_off, currency)} off"
    else:
        return name or "Discount"
    if duration == "repeating" and months:
        plural = "month" if months == 1 else "months"
        return f"{value} for {months} {plural}"
    return f"{value} {'forever' if duration == 'forever' else 'once'}"
