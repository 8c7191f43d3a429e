"""Sign-in form input."""

from __future__ import annotations

from app.i18n import gettext as _
from app.web.forms import Form, is_email, normalise_email


class EmailForm(Form):
    email: str = ""

    def check(self) -> dict[str, str]:
        if not self.email.strip():
            return {"email": _("Enter your email address.")}
        if not is_email(normalise_email(self.email)):
            return {"email": _("Enter an email address like name@example.com.")}
        return {}


class CodeForm(Form):
    code: str = ""

    def check(self) -> dict[str, str]:
        digits = "".join(ch for ch in self.code if ch.isdigit())
        if not self.code.strip():
            return {"code": _("Enter the 6-digit code from the email.")}
        if len(digits) != 6 or any(ch not in "0123456789 -" for ch in self.code.strip()):
            return {"code": _("The code is 6 digits, like 123456.")}
        return {}
