"""Billing-period arithmetic and time-based proration.

Periods follow Stripe's billing cycle anchor: a monthly subscription anchored on 31 January
renews on 28/29 February, then 31 March (each boundary is computed from the anchor, not from
the previous boundary).  All dates are UTC.

Proration is by the second, like Stripe: an item worth ``amount`` for the period
``[start, end)`` changed at ``at`` is credited ``-amount * (end - at) / (end - start)`` and the
new item charged ``new_amount * (end - at) / (end - start)``, each rounded half up to the
smallest currency unit.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

SECONDS = {"day": 86400, "week": 7 * 86400}


def add_months(ts: int, months: int) -> int:
    moment = datetime.fromtimestamp(ts, UTC)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def add_interval(ts: int, interval: str, count: int = 1) -> int:
    if interval == "month":
        return add_months(ts, count)
    if interval == "year":
        return add_months(ts, 12 * count)
    return int(
        (datetime.fromtimestamp(ts, UTC) + timedelta(seconds=SECONDS[interval] * count)).timestamp()
    )


def next_boundary(anchor: int, after: int, interval: str, count: int = 1) -> int:
    """The first billing boundary ``anchor + k intervals`` strictly after ``after``."""
    if anchor > after:
        return anchor
    k = 1
    while True:
        boundary = add_interval(anchor, interval, count * k)
        if boundary > after:
            return boundary
        k += 1


def prorate(amount: int, start: int, end: int, at: int) -> int:
    """``amount`` scaled to the unused part ``[at, end)`` of ``[start, end)``."""
    if end <= start or at >= end:
        return 0
    at = max(at, start)
    share = Decimal(abs(amount)) * Decimal(end - at) / Decimal(end - start)
    rounded = int(share.quantize(Decimal(1), ROUND_HALF_UP))
    return rounded if amount >= 0 else -rounded


def format_date(ts: int) -> str:
    """Stripe's proration description date, e.g. ``16 Jan 2025``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return f"{moment.day} {moment:%b %Y}"
