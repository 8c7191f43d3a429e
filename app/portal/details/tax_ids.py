"""Tax ID formats: what a customer may type for each type, checked before the gateway is called.

``check(type, raw)`` normalises the value the way the type is usually written (spaces, dots and
dashes are tidied per type) and returns ``(value, None)`` when the format fits, or
``(raw, message)`` with a message that names an example of the right format. Formats only: whether
the number is registered is the tax authority's (and Stripe's verification's) business.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from app.i18n import gettext as _

_SEPARATORS = re.compile(r"[\s.\-/]+")


def _compact(raw: str) -> str:
    return _SEPARATORS.sub("", raw).upper()


# -- EU VAT: a country prefix and the country's own pattern (EU-27, plus XI for Northern Ireland) --
EU_VAT: dict[str, tuple[str, str]] = {
    # prefix: (pattern of what follows the prefix, example)
    "AT": (r"U\d{8}", "ATU12345678"),
    "BE": (r"[01]\d{9}", "BE0123456789"),
    "BG": (r"\d{9,10}", "BG123456789"),
    "CY": (r"\d{8}[A-Z]", "CY12345678L"),
    "CZ": (r"\d{8,10}", "CZ12345678"),
    "DE": (r"\d{9}", "DE123456789"),
    "DK": (r"\d{8}", "DK12345678"),
    "EE": (r"\d{9}", "EE123456789"),
    "EL": (r"\d{9}", "EL123456789"),
    "ES": (r"[0-9A-Z]\d{7}[0-9A-Z]", "ESA1234567Z"),
    "FI": (r"\d{8}", "FI12345678"),
    "FR": (r"[0-9A-HJ-NP-Z]{2}\d{9}", "FRAB123456789"),
    "HR": (r"\d{11}", "HR12345678912"),
    "HU": (r"\d{8}", "HU12345678"),
    "IE": (r"\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W]", "IE1234567AB"),
    "IT": (r"\d{11}", "IT12345678912"),
    "LT": (r"\d{9}|\d{12}", "LT123456789123"),
    "LU": (r"\d{8}", "LU12345678"),
    "LV": (r"\d{11}", "LV12345678912"),
    "MT": (r"\d{8}", "MT12345678"),
    "NL": (r"\d{9}B\d{2}", "NL123456789B12"),
    "PL": (r"\d{10}", "PL1234567890"),
    "PT": (r"\d{9}", "PT123456789"),
    "RO": (r"[1-9]\d{1,9}", "RO1234567891"),
    "SE": (r"\d{10}01", "SE123456789101"),
    "SI": (r"\d{8}", "SI12345678"),
    "SK": (r"\d{10}", "SK1234567891"),
    "XI": (r"\d{9}|\d{12}|GD[0-4]\d{2}|HA[5-9]\d{2}", "XI123456789"),
}
# The ISO country of each prefix (Greece writes EL; XI is Northern Ireland).
EU_VAT_COUNTRY = {prefix: prefix for prefix in EU_VAT} | {"EL": "GR", "XI": "GB"}
_EU_PATTERNS = {prefix: re.compile(rf"(?:{pattern})") for prefix, (pattern, _e) in EU_VAT.items()}


def _country_name(code: str) -> str:
    from babel import Locale

    return Locale("en").territories.get(code, code)


def _eu_vat(raw: str) -> tuple[str, str | None]:
    value = _compact(raw)
    if value.startswith("GR"):  # Greece's ISO code; its VAT prefix is EL
        value = "EL" + value[2:]
    prefix, rest = value[:2], value[2:]
    if prefix not in EU_VAT:
        return raw, _(
            "Enter an EU VAT number starting with its country prefix, like DE123456789 or "
            "FRAB123456789."
        )
    if not _EU_PATTERNS[prefix].fullmatch(rest):
        return raw, _(
            "This does not look like a VAT number from %(country)s. Example: %(example)s."
        ) % {
            "country": _country_name(EU_VAT_COUNTRY[prefix]),
            "example": EU_VAT[prefix][1],
        }
    return value, None


_GB_VAT = re.compile(r"GB(?:\d{9}|\d{12}|GD[0-4]\d{2}|HA[5-9]\d{2})")


def _gb_vat(raw: str) -> tuple[str, str | None]:
    value = _compact(raw)
    if value and not value.startswith("GB"):
        value = "GB" + value
    if not _GB_VAT.fullmatch(value):
        return raw, _(
            "Enter a UK VAT number: GB followed by 9 or 12 digits, like GB123456789 "
            "(government departments: GBGD001, health authorities: GBHA599)."
        )
    return value, None


def _us_ein(raw: str) -> tuple[str, str | None]:
    value = _compact(raw)
    if not re.fullmatch(r"\d{9}", value):
        return raw, _("Enter a US EIN: 9 digits, like 12-3456789.")
    return f"{value[:2]}-{value[2:]}", None


ABN_WEIGHTS = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)


def abn_checksum_ok(digits: str) -> bool:
    """The ABN check: subtract 1 from the first digit, weight the digits, the sum divides by 89."""
    if not re.fullmatch(r"\d{11}", digits) or digits[0] == "0":
        return False
    values = [int(d) for d in digits]
    values[0] -= 1
    return sum(w * v for w, v in zip(ABN_WEIGHTS, values, strict=True)) % 89 == 0


def _au_abn(raw: str) -> tuple[str, str | None]:
    value = _compact(raw)
    if not re.fullmatch(r"\d{11}", value):
        return raw, _("Enter an Australian Business Number: 11 digits, like 51 824 753 556.")
    if not abn_checksum_ok(value):
        return raw, _(
            "This is not a valid Australian Business Number: check the digits. "
            "Example: 51 824 753 556."
        )
    return value, None


def _ca_bn(raw: str) -> tuple[str, str | None]:
    value = _compact(raw)
    if not re.fullmatch(r"\d{9}", value):
        return raw, _("Enter a Canadian Business Number: 9 digits, like 123456789.")
    return value, None


_CH_VAT = re.compile(r"CHE(\d{3})(\d{3})(\d{3})(MWST|TVA|IVA)")


def _ch_vat(raw: str) -> tuple[str, str | None]:
    found = _CH_VAT.fullmatch(_compact(raw))
    if found is None:
        return raw, _(
            "Enter a Swiss VAT number: CHE, 9 digits and MWST, TVA or IVA, like "
            "CHE-123.456.789 MWST."
        )
    a, b, c, suffix = found.groups()
    return f"CHE-{a}.{b}.{c} {suffix}", None


@dataclass(frozen=True)
class TaxIdType:
    code: str
    label: Callable[[], str]
    example: str
    check: Callable[[str], tuple[str, str | None]]


TYPES: dict[str, TaxIdType] = {
    t.code: t
    for t in (
        TaxIdType("eu_vat", lambda: _("EU VAT number"), "DE123456789", _eu_vat),
        TaxIdType("gb_vat", lambda: _("UK VAT number"), "GB123456789", _gb_vat),
        TaxIdType(
            "us_ein", lambda: _("US Employer Identification Number (EIN)"), "12-3456789", _us_ein
        ),
        TaxIdType(
            "au_abn", lambda: _("Australian Business Number (ABN)"), "51 824 753 556", _au_abn
        ),
        TaxIdType("ca_bn", lambda: _("Canadian Business Number (BN)"), "123456789", _ca_bn),
        TaxIdType("ch_vat", lambda: _("Swiss VAT number"), "CHE-123.456.789 MWST", _ch_vat),
    )
}


def choices() -> list[tuple[str, str]]:
    """(code, label) for the Tax ID type select, in the order above."""
    return [(t.code, t.label()) for t in TYPES.values()]


def label(code: str) -> str:
    found = TYPES.get(code)
    return found.label() if found else code


def check(type_code: str, raw: str) -> tuple[str, str | None]:
    """``(normalised value, None)`` when ``raw`` fits the type's format, else ``(raw, message)``."""
    found = TYPES.get(type_code)
    if found is None:
        return raw, _("Choose the type of tax ID.")
    if not raw.strip():
        return raw, _("Enter the tax ID, like %(example)s.") % {"example": found.example}
    if len(raw) > 64:
        return raw, _("This is too long for a tax ID. Example: %(example)s.") % {
            "example": found.example
        }
    return found.check(raw)
