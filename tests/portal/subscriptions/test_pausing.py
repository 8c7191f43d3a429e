"""Pausing payments: the dates payments may resume on."""

from __future__ import annotations

from datetime import UTC, datetime

from app.portal.subscriptions import pausing
from app.portal.subscriptions.forms import PauseForm
from tests.portal.subscriptions.examples import NOW


def check_pause(mode: str, resume_on: str = "", tz: str | None = None):
    form = PauseForm(mode=mode, resume_on=resume_on)
    errors = form.check()
    return pausing.validate_pause(form, NOW, tz, errors), errors


def test_pause_dates() -> None:
    assert check_pause("") == (None, {"mode": "Choose how long to pause payments."})
    assert check_pause("indefinitely") == (None, {})
    assert check_pause("date")[1] == {"resume_on": "Enter the date payments resume."}
    assert check_pause("date", "26/12/2026")[1] == {
        "resume_on": "Enter a real date, like 2027-01-15."
    }
    assert check_pause("date", "2026-02-30")[1] == {
        "resume_on": "Enter a real date, like 2027-01-15."
    }
    assert "future" in check_pause("date", "2026-11-26")[1]["resume_on"]
    assert "on or before 26 Feb 2027" in check_pause("date", "2027-02-27")[1]["resume_on"]
    assert check_pause("date", "2027-02-26") == (datetime(2027, 2, 26, tzinfo=UTC), {})
    resumes, errors = check_pause("date", "2026-11-27", tz="America/New_York")
    assert errors == {}
    assert resumes == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


def test_add_months_clamps_the_day() -> None:
    assert pausing.add_months(datetime(2026, 11, 30).date(), 3).isoformat() == "2027-02-28"
