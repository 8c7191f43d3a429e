"""Settings form input: business profile and branding. Each ``check()`` returns one clear message
per field; ``cleaned()`` gives the values to store (stripped, colours lower-case).

What the merchant types is stored as text and always escaped when rendered; these rules keep out
what escaping cannot make harmless (``javascript:`` and other non-web links, control characters
that could break a mail header) and keep lengths within the columns.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from app.configuration import colours
from app.configuration.service import CORNERS, FONTS
from app.i18n import gettext as _
from app.web.forms import Form

BUSINESS_NAME_MAX = 128
HEADLINE_MAX = 256
URL_MAX = 2048
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Characters that never appear unencoded in a URL someone copies from a browser.
_URL_FORBIDDEN = re.compile(r"[\s\"'<>\\^`{|}\x00-\x1f\x7f]")
_HOST = re.compile(r"^[\w.-]+$")  # names, IDN names included
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+$")


def _text_problem(value: str, label: str, maximum: int, *, required: bool) -> str | None:
    if not value:
        return _("Enter your %(label)s.") % {"label": label} if required else None
    if len(value) > maximum:
        return _("%(label)s must be %(n)d characters or fewer.") % {
            "label": label.capitalize(),
            "n": maximum,
        }
    if _CONTROL.search(value):
        return _("%(label)s cannot contain line breaks or control characters.") % {
            "label": label.capitalize()
        }
    return None


def url_problem(value: str) -> str | None:
    """None when ``value`` is an absolute https URL (http only for this computer)."""
    example = _("Enter a full web address, like https://example.com/page.")
    if len(value) > URL_MAX:
        return _("The address must be %(n)d characters or fewer.") % {"n": URL_MAX}
    if _URL_FORBIDDEN.search(value):
        return _("The address cannot contain spaces, quotes or angle brackets.") + " " + example
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return example
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not parts.netloc or not host:
        return _("The address must start with https://.") + " " + example
    if parts.username is not None or parts.password is not None:
        return _("Remove the user name and password from the address.")
    if not (_IPV6.match(host) if ":" in host else _HOST.match(host)) or ".." in host:
        return example
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        return _("The address must start with https:// (http:// is allowed only for localhost).")
    if port == 0:
        return example
    return None


class ProfileForm(Form):
    business_name: str = ""
    headline: str = ""
    privacy_policy_url: str = ""
    terms_of_service_url: str = ""
    default_return_url: str = ""

    def cleaned(self) -> dict[str, str]:
        return {name: getattr(self, name).strip() for name in self.__struct_fields__}

    def check(self) -> dict[str, str]:
        values = self.cleaned()
        errors: dict[str, str] = {}
        problem = _text_problem(
            values["business_name"], _("business name"), BUSINESS_NAME_MAX, required=True
        )
        if problem:
            errors["business_name"] = problem
        problem = _text_problem(values["headline"], _("headline"), HEADLINE_MAX, required=False)
        if problem:
            errors["headline"] = problem
        for name in ("privacy_policy_url", "terms_of_service_url", "default_return_url"):
            if values[name]:
                problem = url_problem(values[name])
                if problem:
                    errors[name] = problem
        return errors


class BrandingForm(Form):
    brand_color: str = ""
    accent_color: str = ""
    font: str = ""
    corner_style: str = ""
    remove_logo: str = ""
    remove_icon: str = ""

    def cleaned(self) -> dict[str, str]:
        return {
            "brand_color": self.brand_color.strip().lower(),
            "accent_color": self.accent_color.strip().lower(),
            "font": self.font.strip(),
            "corner_style": self.corner_style.strip(),
        }

    def check(self) -> dict[str, str]:
        values = self.cleaned()
        errors: dict[str, str] = {}
        colour_hint = _("Enter a colour as # and 6 hexadecimal digits, like #1f4ed8.")
        if not colours.is_hex_colour(values["brand_color"]):
            errors["brand_color"] = colour_hint
        if not colours.is_hex_colour(values["accent_color"]):
            errors["accent_color"] = colour_hint
        if values["font"] not in FONTS:
            errors["font"] = _("Choose one of the fonts in the list.")
        if values["corner_style"] not in CORNERS:
            errors["corner_style"] = _("Choose a corner style.")
        return errors
