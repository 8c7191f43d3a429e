"""Pausing payments: the window a resume date may fall in, and checking the chosen date."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time

from app.i18n import gettext as _
from app.portal.subscriptions.forms import PauseForm
from app.web import formatting

PAUSE_MONTHS = 3


def add_months(day: date, months: int) -> date:
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return day.replace(
        year=year, month=month0 + 1, day=min(day.day, calendar.monthrange(year, month0 + 1)[1])
    )


def pause_window(now: datetime, tz: str | None) -> tuple[date, date]:
    """The first and last days payments may resume on: tomorrow to three months from today, in
    the customer's time zone."""
    today = now.astimezone(formatting.zone(tz)).date()
    return date.fromordinal(today.toordinal() + 1), add_months(today, PAUSE_MONTHS)


def validate_pause(
    form: PauseForm, now: datetime, tz: str | None, errors: dict[str, str]
) -> datetime | None:
    """When payments resume (the start of the chosen day in the customer's zone), or None to
    pause until the customer resumes. Check ``errors`` afterwards."""
    if errors or form.mode != "date":
        return None
    try:
        day = date.fromisoformat(form.resume_on.strip())
    except ValueError:
        errors["resume_on"] = _("Enter a real date, like 2027-01-15.")
        return None
    first, last = pause_window(now, tz)
    if day < first:
        errors["resume_on"] = _("The date payments resume must be in the future.")
    elif day > last:
        errors["resume_on"] = _("The date payments resume must be on or before %(date)s.") % {
            "date": formatting.day(datetime.combine(last, time(12), tzinfo=UTC), "UTC")
        }
    if errors:
        return None
    return datetime.combine(day, time(0), tzinfo=formatting.zone(tz)).astimezone(UTC)
