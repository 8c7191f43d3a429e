"""The card form (sandbox mode: Portico's own form; Stripe mode uses Stripe's hosted page).

Card number and CVC are checked here and handed to the gateway as ``CardInput``; they are never
stored, logged or written back into a re-rendered form.
"""

from __future__ import annotations

import re
from datetime import datetime

from app import clock
from app.billing.gateway import CardInput
from app.i18n import gettext as _
from app.web.forms import Form

# Fields that may be written back into the form after a failed submit (never number or CVC).
ECHOED_FIELDS = ("expiry", "name", "make_default")
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*[/\-. ]\s*(\d{2}|\d{4})\s*$")
_EXPIRY_COMPACT = re.compile(r"^\s*(\d{2})(\d{2})\s*$")


def card_digits(value: str) -> str:
    return re.sub(r"[\s-]", "", value)


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def parse_expiry(value: str) -> tuple[int, int] | None:
    """``MM / YY`` (also ``MM/YY``, ``MM/YYYY``, ``MMYY``) as (month, four-digit year)."""
    found = _EXPIRY.match(value) or _EXPIRY_COMPACT.match(value)
    if found is None:
        return None
    month, year = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12:
        return None
    if year < 100:
        year += 2000
    return month, year


class CardForm(Form):
    number: str = ""
    expiry: str = ""
    cvc: str = ""
    name: str = ""
    make_default: str = ""

    def __repr__(self) -> str:  # keep card data out of logs and tracebacks
        return f"CardForm(expiry={self.expiry!r})"

    def check(self, now: datetime | None = None) -> dict[str, str]:
        errors: dict[str, str] = {}
        digits = card_digits(self.number)
        if not digits:
            errors["number"] = _("Enter the card number.")
        elif not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_ok(digits):
            errors["number"] = _("Enter a valid card number, like 4242 4242 4242 4242.")
        expiry = parse_expiry(self.expiry)
        today = (now or clock.now()).date()
        if not self.expiry.strip():
            errors["expiry"] = _("Enter the expiry date, like 04 / 28.")
        elif expiry is None:
            errors["expiry"] = _("Enter the expiry date as month and year, like 04 / 28.")
        elif (expiry[1], expiry[0]) < (today.year, today.month) or expiry[1] > today.year + 50:
            errors["expiry"] = _("The expiry date must be in the future.")
        cvc = self.cvc.strip()
        if not cvc:
            errors["cvc"] = _("Enter the security code (CVC).")
        elif not re.fullmatch(r"\d{3,4}", cvc):
            errors["cvc"] = _("The security code is 3 or 4 digits, on the back of the card.")
        if len(self.name.strip()) > 256:
            errors["name"] = _("Enter a name of 256 characters or fewer.")
        return errors

    @property
    def wants_default(self) -> bool:
        return bool(self.make_default)

    def card(self) -> CardInput:
        """Only for a form whose ``check()`` found nothing."""
        month, year = parse_expiry(self.expiry) or (0, 0)
        return CardInput(
            number=card_digits(self.number),
            exp_month=month,
            exp_year=year,
            cvc=self.cvc.strip(),
            name=self.name.strip(),
        )
