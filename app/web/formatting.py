"""Money and dates as customers read them.

Money: Stripe amounts are integers in the currency's minor unit; the number of decimals comes from
ISO 4217 via Babel (USD 2, JPY 0, KWD 3). Dates: the customer's time zone when known, else UTC, and
the zone is named wherever a time of day is shown.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_precision

UTC_ZONE = ZoneInfo("UTC")


# Babel's formatting is a large share of a page's rendering time, and pages show the same few
# amounts and dates over and over: the results are cached (pure functions of their arguments).
CACHE_SIZE = 1024


@lru_cache(maxsize=CACHE_SIZE)
def money(amount: int | None, currency: str, locale: str = "en") -> str:
    if amount is None:
        return ""
    code = currency.upper()
    digits = get_currency_precision(code)
    value = Decimal(amount).scaleb(-digits)
    return format_currency(value, code, locale=locale, currency_digits=True)


def zone(name: str | None) -> ZoneInfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC_ZONE


@lru_cache(maxsize=CACHE_SIZE)
def day(value: datetime | None, tz: str | None = None, locale: str = "en") -> str:
    """``26 Nov 2026`` in the customer's zone."""
    if value is None:
        return ""
    return format_date(value.astimezone(zone(tz)), format="d MMM y", locale=locale)


@lru_cache(maxsize=CACHE_SIZE)
def moment(value: datetime | None, tz: str | None = None, locale: str = "en") -> str:
    """``26 Nov 2026, 14:05 UTC``: a time of day always names its zone."""
    if value is None:
        return ""
    local = value.astimezone(zone(tz))
    text = format_datetime(local, format="d MMM y, HH:mm", locale=locale)
    return f"{text} {local.tzname()}"


def zone_name(tz: str | None) -> str:
    return zone(tz).key
