"""Subscription form input. ``check()`` covers what needs no context; the rules that depend on the
configuration and the subscription (which plans, quantity bounds, which reasons, date limits) are
in ``service``."""

from __future__ import annotations

import re

from app.i18n import gettext as _
from app.web.forms import Form

COMMENT_MAX = 500
PROMOTION_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PAUSE_MODES = ("date", "indefinitely")


class ChangeForm(Form):
    price: str = ""
    quantity: str = ""
    promotion_code: str = ""

    def check(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.price.strip():
            errors["price"] = _("Choose a plan.")
        code = self.promotion_code.strip()
        if code and not PROMOTION_CODE_RE.match(code):
            errors["promotion_code"] = _(
                "Enter the promotion code as it was given to you: letters, numbers, hyphens and "
                "underscores only."
            )
        return errors


class CancelForm(Form):
    reason: str = ""
    comment: str = ""

    def check(self) -> dict[str, str]:
        if len(self.comment.strip()) > COMMENT_MAX:
            return {
                "comment": _("Your comment must be %(max)d characters or fewer.")
                % {"max": COMMENT_MAX}
            }
        return {}


class PauseForm(Form):
    mode: str = ""
    resume_on: str = ""

    def check(self) -> dict[str, str]:
        if self.mode not in PAUSE_MODES:
            return {"mode": _("Choose how long to pause payments.")}
        if self.mode == "date":
            value = self.resume_on.strip()
            if not value:
                return {"resume_on": _("Enter the date payments resume.")}
            if not DATE_RE.match(value):
                return {"resume_on": _("Enter a real date, like 2027-01-15.")}
        return {}
