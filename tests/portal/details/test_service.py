"""Billing details rules: allowed_updates filtering, field checks, "same as billing address"."""

from __future__ import annotations

import pytest

from app.audit.service import Actor
from app.audit.tables import AuditEvent
from app.billing.gateway import CustomerDetails
from app.billing.sandbox import SandboxGateway
from app.billing.tables import Customer, IdempotencyRecord
from app.configuration.features import CustomerUpdate, Features
from app.portal.activity import Who
from app.portal.details import forms, service
from tests.helpers import JENNY
from tests.portal.support import customer_by_email

ADDRESS = {
    "address_line1": "1 Main St",
    "address_line2": "",
    "address_city": "Springfield",
    "address_state": "IL",
    "address_postal_code": "62701",
    "address_country": "US",
}


def customer(**fields) -> Customer:
    return Customer(**{"id": "cus_test", "email": "a@example.com", "name": "Ann Old", **fields})


def test_allowed_updates_and_switch() -> None:
    everything = Features(
        customer_update=CustomerUpdate(
            allowed_updates=["tax_id", "shipping", "phone", "address", "name"]
        )
    )
    assert service.allowed_updates(everything) == ["name", "address", "phone", "shipping", "tax_id"]
    assert service.allowed_updates(Features()) == ["name", "address", "phone"]
    off = Features(customer_update=CustomerUpdate(enabled=False))
    assert not service.enabled(off)
    assert service.allowed_updates(off) == []


def test_filter_details_keeps_only_allowed_fields() -> None:
    details = CustomerDetails(name="N", phone="+1 555 0100", address_city="X", shipping_name="S")
    kept = service.filter_details(details, ["name"])
    assert kept == CustomerDetails(name="N")
    kept = service.filter_details(details, ["phone", "shipping"])
    assert kept == CustomerDetails(phone="+1 555 0100", shipping_name="S")


def test_a_field_not_allowed_is_ignored_even_if_posted() -> None:
    values, errors, details = forms.read_details(
        {"name": "Ann New", "phone": "+44 20 7946 0000", **ADDRESS}, ["name"], customer()
    )
    assert errors == {}
    assert details == CustomerDetails(name="Ann New")
    assert values["phone"] == ""  # shown as stored, not as posted


def test_valid_details() -> None:
    data = {"name": " Ann New ", "phone": "+1 (415) 555-0100", **ADDRESS}
    _values, errors, details = forms.read_details(data, ["name", "address", "phone"], customer())
    assert errors == {}
    assert details.name == "Ann New"
    assert details.address_line2 == ""  # empty clears
    assert details.address_country == "US"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"address_postal_code": ""}, "address_postal_code"),
        ({"address_country": "XX"}, "address_country"),
        ({"address_country": "EU"}, "address_country"),
        ({"address_city": "c" * 129}, "address_city"),
        ({"address_line1": "l" * 257}, "address_line1"),
        ({"address_postal_code": "62701<"}, "address_postal_code"),
        ({"phone": "call me"}, "phone"),
        ({"phone": "+1 555 0100 ext. 4"}, "phone"),
        ({"phone": "1+555 0100"}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"phone": "1" * 33}, "phone"),
        ({"name": "n" * 257}, "name"),
    ],
)
def test_invalid_details(changes: dict[str, str], field: str) -> None:
    data = {"name": "Ann", "phone": "+1 555 0100", **ADDRESS, **changes}
    _values, errors, _details = forms.read_details(data, ["name", "address", "phone"], customer())
    assert list(errors) == [field]


def test_postal_code_not_needed_without_line1_or_where_there_are_none() -> None:
    allowed = ["address"]
    no_line1 = {**ADDRESS, "address_line1": "", "address_postal_code": ""}
    assert forms.read_details(no_line1, allowed, customer())[1] == {}
    dubai = {**ADDRESS, "address_country": "AE", "address_postal_code": ""}
    assert forms.read_details(dubai, allowed, customer())[1] == {}


def test_same_as_billing_copies_on_the_server() -> None:
    data = {"name": "Ann", **ADDRESS, "shipping_same": "1", "shipping_address_city": "Elsewhere"}
    values, errors, details = forms.read_details(data, ["name", "address", "shipping"], customer())
    assert errors == {}
    assert details.shipping_address_line1 == "1 Main St"
    assert details.shipping_address_city == "Springfield"
    assert details.shipping_address_country == "US"
    assert details.shipping_name == "Ann"
    assert values["shipping_same"] == "1"


def test_same_as_billing_uses_the_stored_address_when_it_is_not_editable() -> None:
    stored = customer(address_line1="9 Old Rd", address_postal_code="1000", address_country="BE")
    data = {"shipping_same": "1", "shipping_name": "Dock 4"}
    _values, errors, details = forms.read_details(data, ["shipping"], stored)
    assert errors == {}
    assert details.shipping_address_line1 == "9 Old Rd"
    assert details.shipping_address_country == "BE"
    assert details.shipping_name == "Dock 4"
    assert details.address_line1 is None  # the billing address itself is not sent


def test_shipping_address_needs_a_name() -> None:
    data = {"shipping_address_line1": "1 Dock", "shipping_address_postal_code": "1"}
    _values, errors, _details = forms.read_details(data, ["shipping"], customer(name=None))
    assert list(errors) == ["shipping_name"]


def test_changes_are_only_what_differs() -> None:
    stored = customer(phone=None, address_city="Springfield")
    before, after = forms.changes(
        stored, CustomerDetails(name="Ann New", phone="", address_city="Springfield")
    )
    assert before == {"name": "Ann Old"}
    assert after == {"name": "Ann New"}


def test_countries_are_iso_codes_with_names() -> None:
    countries = dict(forms.countries())
    assert countries["DE"] == "Germany"
    assert countries["US"] == "United States"
    assert "EU" not in countries
    assert "ZZ" not in countries
    assert "001" not in countries
    assert 240 <= len(countries) <= 252


async def test_saving_unchanged_details_sends_and_records_nothing(demo, settings) -> None:
    """Only a change is sent: a key billing has seen then always has its event, so a key with
    a record and no event is one whose first submit died (``activity.Replay.APPLIED``)."""
    jenny = await customer_by_email(JENNY)
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name: str):
            calls.append(name)
            return getattr(SandboxGateway(settings), name)

    who = Who(actor=Actor(type="customer", id=jenny.id, email=JENNY), configuration="bpc")
    unchanged = CustomerDetails(name=jenny.name or "", phone=jenny.phone or "")
    for _ in range(2):  # the form, then the same form again
        after = await service.save(
            Counting(),  # type: ignore[arg-type]
            who,
            jenny,
            unchanged,
            ["name", "phone"],
            key="portico_" + "s" * 48,
        )
        assert after == {}
    assert calls == []
    assert await IdempotencyRecord.count() == 0
    assert await AuditEvent.count().where(AuditEvent.action == service.DETAILS_UPDATED) == 0
