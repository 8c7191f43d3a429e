"""Email delivery page input: the SMTP settings form and the test email form."""

from __future__ import annotations

import ipaddress
import re

from app.i18n import gettext as _
from app.mail.settings import SECURITY, Changes
from app.web.forms import Form, is_email, normalise_email

HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def host_problem(value: str) -> str | None:
    """None for a host name (letters, digits, hyphens, dots; international names too) or an IP
    address; else the message to show."""
    if not value:
        return _("Enter the SMTP host, like smtp.example.com.")
    if len(value) > 253:
        return _("SMTP host must be 253 characters or fewer.")
    try:
        ipaddress.ip_address(value.removeprefix("[").removesuffix("]"))
        return None
    except ValueError:
        pass
    try:
        ascii_host = value.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""
    labels = ascii_host.removesuffix(".").split(".")
    if not ascii_host or not all(HOST_LABEL.match(label) for label in labels):
        return _(
            "SMTP host can only contain letters, digits, hyphens and dots, like smtp.example.com."
        )
    return None


def port_problem(value: str) -> str | None:
    if not value:
        return _("Enter the port, like 587.")
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 65535:
        return _("Port must be a whole number from 1 to 65535, like 587.")
    return None


class MailSettingsForm(Form):
    host: str = ""
    port: str = ""
    security: str = ""
    username: str = ""
    password: str = ""
    remove_password: str = ""
    sender_name: str = ""
    sender_address: str = ""

    def cleaned(self, locked: set[str] | frozenset[str] = frozenset()) -> Changes:
        """The changes to store; fields the environment controls are left out."""

        def keep(name: str, value):
            return None if name in locked else value

        return Changes(
            host=keep("host", self.host.strip()),
            port=None if "port" in locked else int(self.port.strip()),
            security=keep("security", self.security),
            username=keep("username", self.username.strip()),
            new_password=keep("password", self.password or None),
            remove_password="password" not in locked and bool(self.remove_password),
            sender_name=keep("sender_name", self.sender_name.strip()),
            sender_address=keep("sender_address", self.sender_address.strip()),
        )

    def check(self, locked: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
        errors: dict[str, str] = {}
        if "host" not in locked:
            problem = host_problem(self.host.strip())
            if problem:
                errors["host"] = problem
        if "port" not in locked:
            problem = port_problem(self.port.strip())
            if problem:
                errors["port"] = problem
        if "security" not in locked and self.security not in SECURITY:
            errors["security"] = _("Choose how the connection is secured.")
        if "username" not in locked:
            if len(self.username.strip()) > 320:
                errors["username"] = _("Username must be 320 characters or fewer.")
            elif CONTROL.search(self.username):
                errors["username"] = _("Username cannot contain line breaks or tabs.")
        if "password" not in locked:
            if len(self.password) > 512:
                errors["password"] = _("Password must be 512 characters or fewer.")
            elif CONTROL.search(self.password):
                errors["password"] = _("Password cannot contain line breaks or tabs.")
            elif self.password and self.remove_password:
                errors["password"] = _(
                    "Either enter a new password or remove the stored one, not both."
                )
        if "sender_name" not in locked:
            if len(self.sender_name.strip()) > 128:
                errors["sender_name"] = _("Sender name must be 128 characters or fewer.")
            elif CONTROL.search(self.sender_name):
                errors["sender_name"] = _("Sender name cannot contain line breaks or tabs.")
        if "sender_address" not in locked:
            address = self.sender_address.strip()
            if not address:
                errors["sender_address"] = _("Enter the sender address, like billing@example.com.")
            elif not is_email(address):
                errors["sender_address"] = _(
                    "Enter the sender address as an email address, like billing@example.com."
                )
        return errors


class SendTestForm(Form):
    test_to: str = ""

    def cleaned(self) -> str:
        return normalise_email(self.test_to)

    def check(self) -> dict[str, str]:
        if not self.test_to.strip():
            return {"test_to": _("Enter the email address to send the test email to.")}
        if not is_email(self.cleaned()):
            return {"test_to": _("Enter an email address like name@example.com.")}
        return {}
