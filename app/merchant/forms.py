"""Merchant sign-in and login-link form input."""

from __future__ import annotations

from app.i18n import gettext as _
from app.web.forms import Form, is_email, normalise_email


class SignInForm(Form):
    email: str = ""
    password: str = ""

    def check(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.email.strip():
            errors["email"] = _("Enter your email address.")
        elif not is_email(normalise_email(self.email)):
            errors["email"] = _("Enter an email address like name@example.com.")
        if not self.password:
            errors["password"] = _("Enter your password.")
        return errors


class PrefillForm(Form):
    email: str = ""

    def cleaned(self) -> str:
        return normalise_email(self.email)

    def check(self) -> dict[str, str]:
        if self.email.strip() and not is_email(self.cleaned()):
            return {"email": _("Enter an email address like name@example.com.")}
        return {}
