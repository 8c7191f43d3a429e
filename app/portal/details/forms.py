"""Billing details input: which fields a group covers, how each is checked, and the tax ID form.

Only groups the configuration allows (``customer_update.allowed_updates``) are read from a submitted
form; anything else posted is ignored. Every value is trimmed; a known field left empty clears it.
"""

from __future__ import annotations

import re
from functools import cache

from app.billing.gateway import CustomerDetails
from app.billing.tables import Customer
from app.i18n import gettext as _
from app.portal.details import tax_ids

ADDRESS_PARTS = ("line1", "line2", "city", "state", "postal_code", "country")
BILLING_ADDRESS = tuple(f"address_{part}" for part in ADDRESS_PARTS)
SHIPPING_ADDRESS = tuple(f"shipping_address_{part}" for part in ADDRESS_PARTS)
# allowed_updates group → the CustomerDetails fields it covers
GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "address": BILLING_ADDRESS,
    "phone": ("phone",),
    "shipping": ("shipping_name", *SHIPPING_ADDRESS),
}
SAME_AS_BILLING = "shipping_same"
PAGE_ORDER = ("name", "phone", *BILLING_ADDRESS, "shipping_name", *SHIPPING_ADDRESS)
MAX_LENGTH = {
    "name": 256,
    "phone": 32,
    "line1": 256,
    "line2": 256,
    "city": 128,
    "state": 128,
    "postal_code": 20,
}
_PHONE = re.compile(r"^\+?[0-9 ().\-]+$")
_POSTAL = re.compile(r"^[A-Za-z0-9 \-]+$")
# Not ISO 3166-1 countries (regions, pseudo-locales, reserved codes) though Babel lists them.
_NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}
)
# Countries without postal codes: an address there needs none.
NO_POSTAL_CODE = frozenset({
    "AE", "AG", "AN", "AO", "AW", "BF", "BI", "BJ", "BO", "BS", "BW", "BZ", "CD", "CF", "CG",
    "CI", "CK", "CM", "DJ", "DM", "ER", "FJ", "GA", "GD", "GH", "GM", "GQ", "GY", "HK", "KI",
    "KM", "KN", "KP", "LY", "ML", "MO", "MR", "MW", "NR", "NU", "QA", "RW", "SB", "SC", "SL",
    "SR", "ST", "SY", "TF", "TG", "TK", "TL", "TO", "TV", "UG", "VU", "YE", "ZW",
})  # fmt: skip


@cache
def countries() -> tuple[tuple[str, str], ...]:
    """(ISO code, English name) of every country, sorted by name."""
    from babel import Locale

    territories = Locale("en").territories
    found = [
        (code, name)
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    return tuple(sorted(found, key=lambda pair: pair[1]))


@cache
def country_codes() -> frozenset[str]:
    return frozenset(code for code, _name in countries())


def country_name(code: str | None) -> str:
    return dict(countries()).get(code or "", code or "")


def fields_for(allowed: list[str]) -> list[str]:
    return [name for group in allowed if group in GROUPS for name in GROUPS[group]]


def current_values(customer: Customer) -> dict[str, str]:
    """What the form shows before anything is submitted: the customer's details as stored."""
    values = {name: getattr(customer, name) or "" for group in GROUPS.values() for name in group}
    values["email"] = customer.email or ""
    return values


def _label_of(name: str) -> str:
    part = name.removeprefix("shipping_").removeprefix("address_")
    labels = {
        "name": _("name"),
        "phone": _("phone number"),
        "line1": _("address line 1"),
        "line2": _("address line 2"),
        "city": _("city"),
        "state": _("state or region"),
        "postal_code": _("postal code"),
    }
    return labels.get(part, part)


def _check_address(values: dict[str, str], prefix: str, errors: dict[str, str]) -> None:
    for part in ("line1", "line2", "city", "state", "postal_code"):
        name = f"{prefix}{part}"
        if len(values[name]) > MAX_LENGTH[part]:
            errors[name] = _("Enter a %(field)s of %(n)d characters or fewer.") % {
                "field": _label_of(name),
                "n": MAX_LENGTH[part],
            }
    country = values[f"{prefix}country"]
    if country and country not in country_codes():
        errors[f"{prefix}country"] = _("Choose a country from the list.")
    postal = values[f"{prefix}postal_code"]
    if postal and f"{prefix}postal_code" not in errors and not _POSTAL.match(postal):
        errors[f"{prefix}postal_code"] = _(
            "A postal code has only letters, digits, spaces and hyphens."
        )
    if values[f"{prefix}line1"] and not postal and country not in NO_POSTAL_CODE:
        errors[f"{prefix}postal_code"] = _("Enter the postal code.")


def _check_phone(value: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_LENGTH["phone"]:
        return _("Enter a phone number of %(n)d characters or fewer.") % {"n": MAX_LENGTH["phone"]}
    if not _PHONE.match(value) or sum(ch.isdigit() for ch in value) < 5:
        return _(
            "Enter a phone number using digits, spaces, brackets, dots and hyphens, "
            "with + in front for an international number, like +1 (415) 555-0100."
        )
    return None


def read_details(
    data: dict[str, str], allowed: list[str], customer: Customer
) -> tuple[dict[str, str], dict[str, str], CustomerDetails]:
    """The submitted details: (values to show again, per-field messages, what to send). Fields of
    groups not allowed keep their stored values and are never sent."""
    values = current_values(customer)
    names = fields_for(allowed)
    for name in names:
        raw = data.get(name, "")
        values[name] = raw.strip() if isinstance(raw, str) else ""
    for name in (*BILLING_ADDRESS, *SHIPPING_ADDRESS):
        values[name] = values[name].upper() if name.endswith("_country") else values[name]
    same = "shipping" in allowed and bool(data.get(SAME_AS_BILLING))
    if same:
        for part in ADDRESS_PARTS:
            values[f"shipping_address_{part}"] = values[f"address_{part}"]
        if not values["shipping_name"]:
            values["shipping_name"] = values["name"]
    values[SAME_AS_BILLING] = "1" if same else ""

    errors: dict[str, str] = {}
    if "name" in allowed and len(values["name"]) > MAX_LENGTH["name"]:
        errors["name"] = _("Enter a name of %(n)d characters or fewer.") % {"n": MAX_LENGTH["name"]}
    if "address" in allowed:
        _check_address(values, "address_", errors)
    if "phone" in allowed and (message := _check_phone(values["phone"])):
        errors["phone"] = message
    if "shipping" in allowed:
        if len(values["shipping_name"]) > MAX_LENGTH["name"]:
            errors["shipping_name"] = _("Enter a name of %(n)d characters or fewer.") % {
                "n": MAX_LENGTH["name"]
            }
        shipping_errors: dict[str, str] = {}
        _check_address(values, "shipping_address_", shipping_errors)
        if same:  # the copied billing address is where the problem is
            for name, message in shipping_errors.items():
                billing = name.removeprefix("shipping_")
                errors.setdefault(billing if "address" in allowed else name, message)
        else:
            errors.update(shipping_errors)
        if values["shipping_address_line1"] and not values["shipping_name"]:
            errors["shipping_name"] = _("Enter the name to ship to.")
    details = CustomerDetails(**{name: values[name] for name in names})
    # In the order the page shows the fields, so the error summary reads top to bottom.
    order = {name: position for position, name in enumerate(PAGE_ORDER)}
    errors = dict(sorted(errors.items(), key=lambda item: order.get(item[0], len(order))))
    return values, errors, details


def changes(customer: Customer, details: CustomerDetails) -> tuple[dict, dict]:
    """(before, after) of the fields that change; an empty value and no value are the same."""
    before: dict[str, str | None] = {}
    after: dict[str, str | None] = {}
    for name in CustomerDetails.__struct_fields__:
        new = getattr(details, name)
        if new is None:
            continue
        old = getattr(customer, name, None)
        if (old or "") != new:
            before[name] = old
            after[name] = new or None
    return before, after


def read_tax_id(data: dict[str, str]) -> tuple[dict[str, str], dict[str, str], str, str]:
    """The tax ID form: (values to show again, messages, type, normalised value)."""
    type_code = data.get("tax_id_type", "").strip()
    raw = data.get("tax_id_value", "")
    values = {"tax_id_type": type_code, "tax_id_value": raw}
    errors: dict[str, str] = {}
    if type_code not in tax_ids.TYPES:
        errors["tax_id_type"] = _("Choose the type of tax ID.")
        return values, errors, type_code, raw
    normalised, message = tax_ids.check(type_code, raw)
    if message:
        errors["tax_id_value"] = message
    return values, errors, type_code, normalised
