"""Billing details page, with and without htmx: save details, add and remove tax IDs."""

from __future__ import annotations

import re

import pytest

from app.billing.tables import Customer, TaxId
from tests.helpers import JENNY, MAX, without_html
from tests.portal.support import (
    audit_events,
    intents_on,
    set_features,
    signed_in,
    success_target,
)

DETAILS = {
    "name": "Jenny Rosen-Ng",
    "phone": "+1 (415) 555-0199",
    "address_line1": "1 Market St",
    "address_line2": "Floor 3",
    "address_city": "San Francisco",
    "address_state": "CA",
    "address_postal_code": "94105",
    "address_country": "US",
}


async def stored(email: str) -> Customer:
    return await Customer.objects().where(Customer.email == email).first()


async def form_intents(client) -> list[str]:
    """The intents of the page's forms: details, then each tax ID's Remove, then add tax ID."""
    page = await client.get("/portal/details")
    return intents_on(page.text)


async def test_page_full_and_fragment(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        page = await jenny.get("/portal/details")
        assert page.status_code == 200
        html = page.text
        labels = ("Name", "Address line 1", "Address line 2", "City", "State / region",
                  "Postal code", "Country", "Phone", "Shipping name", "Shipping address line 1",
                  "Shipping city", "Shipping postal code", "Shipping country",
                  "Same as billing address", "Tax ID type", "Tax ID")  # fmt: skip
        for label in labels:
            assert f">{label}</label>" in html, label
        assert re.search(r'id="phone"[^>]*type="tel"', html)
        for token in ("name", "address-line1", "address-line2", "address-level2",
                      "address-level1", "postal-code", "country", "tel",
                      "shipping address-line1"):  # fmt: skip
            assert f'autocomplete="{token}"' in html, token
        assert '<option value="DE">Germany</option>' in html
        assert '<option value="US" selected>United States</option>' in html
        assert 'value="Jenny Rosen"' in html
        assert "jenny.rosen@example.com" in html
        assert "cannot be changed here" in html
        assert 'name="email"' not in html
        assert ">Save</button>" in html
        fragment = await jenny.get("/portal/details", htmx=True)
        assert fragment.status_code == 200
        assert without_html(fragment.text)
        assert fragment.headers["vary"] == "HX-Request"


@pytest.mark.parametrize("htmx", [False, True])
async def test_save(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        before = await stored(JENNY)
        intent = (await form_intents(jenny))[0]
        data = {**DETAILS, "intent": intent, "shipping_name": before.shipping_name or "",
                "shipping_address_line1": before.shipping_address_line1 or "",
                "shipping_address_city": before.shipping_address_city or "",
                "shipping_address_state": before.shipping_address_state or "",
                "shipping_address_postal_code": before.shipping_address_postal_code or "",
                "shipping_address_country": before.shipping_address_country or ""}  # fmt: skip
        response = await jenny.post("/portal/details", data, htmx=htmx)
        assert success_target(response, htmx) == "/portal/details"
        after = await stored(JENNY)
        assert after.name == "Jenny Rosen-Ng"
        assert after.phone == "+1 (415) 555-0199"
        assert after.address_line1 == "1 Market St"
        assert after.address_line2 == "Floor 3"
        assert after.address_postal_code == "94105"
        assert after.email == JENNY
        again = await jenny.post("/portal/details", data)
        assert again.status_code == 303
        events = await audit_events("customer.details_updated")
        assert len(events) == 1
        changed = set(events[0]["after"])
        assert {"name", "address_line1", "address_postal_code"} <= changed
        assert "address_country" not in changed  # unchanged fields are not recorded
        assert events[0]["before"]["name"] == "Jenny Rosen"
        page = await jenny.get("/portal/details")
        assert "Your billing details were saved." in page.text


async def test_fields_not_allowed_are_ignored(settings, demo) -> None:
    await set_features(demo, customer_update={"allowed_updates": ["name"]})
    async with signed_in(settings, demo, JENNY) as jenny:
        before = await stored(JENNY)
        page = await jenny.get("/portal/details")
        assert ">Phone</label>" not in page.text
        assert ">Address line 1</label>" not in page.text
        assert "Tax IDs" not in page.text
        response = await jenny.post(
            "/portal/details",
            {**DETAILS, "email": "evil@example.com", "intent": intents_on(page.text)[0]},
        )
        assert response.status_code == 303
        after = await stored(JENNY)
        assert after.name == "Jenny Rosen-Ng"
        assert (after.phone, after.address_line1, after.email) == (
            before.phone,
            before.address_line1,
            before.email,
        )
        tax = await jenny.post("/portal/details/tax-ids", {"tax_id_type": "us_ein",
                               "tax_id_value": "12-3456789", "intent": "a" * 22})  # fmt: skip
        assert tax.status_code == 404


@pytest.mark.parametrize("htmx", [False, True])
async def test_invalid_details_are_shown_again(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        before = await stored(JENNY)
        data = {**DETAILS, "address_postal_code": "", "address_country": "QQ",
                "phone": "phone me", "intent": (await form_intents(jenny))[0]}  # fmt: skip
        response = await jenny.post("/portal/details", data, htmx=htmx)
        assert response.status_code == 422
        html = response.text
        assert "There is a problem" in html
        for field in ("address_postal_code", "address_country", "phone"):
            assert f'href="#{field}"' in html
            assert f'id="{field}-error"' in html
        assert 'value="Jenny Rosen-Ng"' in html  # submitted values kept
        assert 'value="phone me"' in html
        assert "<title>Error:" in html
        assert without_html(html) is htmx
        assert (await stored(JENNY)).name == before.name
        assert await audit_events("customer.details_updated") == []


async def test_same_as_billing_address(settings, demo) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        data = {**DETAILS, "shipping_same": "1", "shipping_address_line1": "ignored",
                "intent": (await form_intents(max_))[0]}  # fmt: skip
        response = await max_.post("/portal/details", data)
        assert response.status_code == 303
        after = await stored(MAX)
        assert after.shipping_address_line1 == "1 Market St"
        assert after.shipping_address_postal_code == "94105"
        assert after.shipping_name == "Jenny Rosen-Ng"


async def test_missing_intent_and_csrf(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        assert (await jenny.post("/portal/details", DETAILS)).status_code == 422
        no_csrf = await jenny.post("/portal/details", {**DETAILS, "intent": "b" * 22}, csrf=False)
        assert no_csrf.status_code == 403
        assert (await stored(JENNY)).name == "Jenny Rosen"


@pytest.mark.parametrize("htmx", [False, True])
async def test_add_and_remove_tax_id(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        intent = (await form_intents(jenny))[-1]
        data = {"tax_id_type": "eu_vat", "tax_id_value": "de 123.456.789", "intent": intent}
        response = await jenny.post("/portal/details/tax-ids", data, htmx=htmx)
        assert success_target(response, htmx) == "/portal/details"
        again = await jenny.post("/portal/details/tax-ids", data)
        assert again.status_code == 303
        rows = await TaxId.select().where(TaxId.customer == jenny.customer.id)
        assert [(r["type"], r["value"]) for r in rows] == [("eu_vat", "DE123456789")]
        assert len(await audit_events("customer.tax_id_added")) == 1
        page = await jenny.get("/portal/details")
        assert "Tax ID DE123456789 was added." in page.text
        tax_id = rows[0]["id"]
        assert f'action="/portal/details/tax-ids/{tax_id}/remove"' in page.text
        remove_intent = intents_on(page.text)[1]
        url = f"/portal/details/tax-ids/{tax_id}/remove"
        removed = await jenny.post(url, {"intent": remove_intent}, htmx=htmx)
        assert success_target(removed, htmx) == "/portal/details"
        twice = await jenny.post(url, {"intent": remove_intent})
        assert twice.status_code == 303
        assert await TaxId.count().where(TaxId.customer == jenny.customer.id) == 0
        events = await audit_events("customer.tax_id_removed")
        assert len(events) == 1
        assert events[0]["object_id"] == tax_id


@pytest.mark.parametrize("htmx", [False, True])
async def test_invalid_tax_id(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        data = {"tax_id_type": "au_abn", "tax_id_value": "51 824 753 557",
                "intent": (await form_intents(jenny))[-1]}  # fmt: skip
        response = await jenny.post("/portal/details/tax-ids", data, htmx=htmx)
        assert response.status_code == 422
        assert "51 824 753 556" in response.text  # the example
        assert 'value="51 824 753 557"' in response.text
        assert '<option value="au_abn" selected>' in response.text
        assert 'href="#tax_id_value"' in response.text
        assert await TaxId.count().where(TaxId.customer == jenny.customer.id) == 0


async def test_someone_elses_tax_id_is_404(settings, demo) -> None:
    theirs = await TaxId.select().first()
    assert theirs is not None
    async with signed_in(settings, demo, JENNY) as jenny:
        assert theirs["customer"] != jenny.customer.id
        for htmx in (False, True):
            response = await jenny.post(
                f"/portal/details/tax-ids/{theirs['id']}/remove", {"intent": "c" * 22}, htmx=htmx
            )
            assert response.status_code == 404
        no_intent = await jenny.post(f"/portal/details/tax-ids/{theirs['id']}/remove", {})
        assert no_intent.status_code == 404
    assert await TaxId.exists().where(TaxId.id == theirs["id"])
    assert await audit_events("customer.tax_id_removed") == []


async def test_switched_off(settings, demo) -> None:
    await set_features(demo, customer_update={"enabled": False})
    async with signed_in(settings, demo, JENNY) as jenny:
        overview = await jenny.get("/portal")
        assert 'href="/portal/details"' not in overview.text
        assert (await jenny.get("/portal/details")).status_code == 404
        response = await jenny.post("/portal/details", {**DETAILS, "intent": "d" * 22})
        assert response.status_code == 404
        tax = await jenny.post("/portal/details/tax-ids", {"tax_id_type": "us_ein",
                               "tax_id_value": "12-3456789", "intent": "e" * 22})  # fmt: skip
        assert tax.status_code == 404
    assert (await stored(JENNY)).name == "Jenny Rosen"
