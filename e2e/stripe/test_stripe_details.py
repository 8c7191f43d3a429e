"""Billing details in Stripe mode, with JavaScript on and off: name, phone, billing and shipping
address saved to Stripe (and emptied fields removed there), an EU VAT id added and removed."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from e2e.support.axe import assert_accessible
from e2e.support.portal import (
    assert_stayed_in_document,
    button,
    follow,
    follow_to_new_content,
    open_page,
)
from e2e.support.stripe_journeys import (
    StripeJourney,
    flash,
)
from tests.stripe_api import StripeAPIServer


def filled(address: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (address or {}).items() if value}


def tax_ids_on_stripe(stripe_api: StripeAPIServer, customer: str) -> list[tuple[str, str, str]]:
    listed = stripe_api.call("GET", f"/v1/customers/{customer}/tax_ids")
    return [(t["type"], t["value"], t["country"]) for t in listed["data"]]


def test_edit_billing_details_and_a_vat_id(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
) -> None:
    with journey.webhooks_held():
        customer = journey.sign_in("details")["customer"]
        open_page(page, js, "/portal/details", "Billing details")
        expect(page.get_by_label("Address line 1", exact=True)).to_have_value("510 Townsend St")

        page.get_by_label("Name", exact=True).fill("Jenny Rosen GmbH")
        page.get_by_label("Phone", exact=True).fill("+49 30 1234567")
        page.get_by_label("Address line 1", exact=True).fill("Torstra\u00dfe 109")
        page.get_by_label("City", exact=True).fill("Berlin")
        page.get_by_label("Postal code", exact=True).fill("10119")
        page.get_by_label("Country", exact=True).select_option(label="Germany")
        page.get_by_label("Shipping name", exact=True).fill("Jenny Rosen")
        page.get_by_label("Shipping address line 1", exact=True).fill("Am Sandtorkai 1")
        page.get_by_label("Shipping city", exact=True).fill("Hamburg")
        page.get_by_label("Shipping postal code", exact=True).fill("20457")
        page.get_by_label("Shipping country", exact=True).select_option(label="Germany")
        follow(page, js, button(page, "Save"))

        flash(page, "Your billing details were saved.")
        expect(page.get_by_label("Name", exact=True)).to_have_value("Jenny Rosen GmbH")
        expect(page.get_by_label("City", exact=True)).to_have_value("Berlin")
        expect(page.get_by_label("Shipping city", exact=True)).to_have_value("Hamburg")
        on_stripe = stripe_api.get(customer)
        assert (on_stripe["name"], on_stripe["phone"]) == ("Jenny Rosen GmbH", "+49 30 1234567")
        assert filled(on_stripe["address"]) == {
            "line1": "Torstra\u00dfe 109",
            "city": "Berlin",
            "postal_code": "10119",
            "country": "DE",
        }
        assert on_stripe["shipping"]["name"] == "Jenny Rosen"
        assert filled(on_stripe["shipping"]["address"]) == {
            "line1": "Am Sandtorkai 1",
            "city": "Hamburg",
            "postal_code": "20457",
            "country": "DE",
        }

        # Emptied fields are removed on Stripe (the shipping address as a whole).
        page.get_by_label("Phone", exact=True).fill("")
        for label in ("Shipping name", "Shipping address line 1", "Shipping city"):
            page.get_by_label(label, exact=True).fill("")
        page.get_by_label("Shipping postal code", exact=True).fill("")
        page.get_by_label("Shipping country", exact=True).select_option(value="")
        follow_to_new_content(page, js, button(page, "Save"))
        flash(page, "Your billing details were saved.")
        expect(page.get_by_label("Phone", exact=True)).to_have_value("")
        expect(page.get_by_label("Shipping city", exact=True)).to_have_value("")
        on_stripe = stripe_api.get(customer)
        assert (on_stripe["phone"], on_stripe["shipping"]) == (None, None)
        assert filled(on_stripe["address"])["city"] == "Berlin"

        taxes = page.get_by_role("region", name="Tax IDs")
        taxes.get_by_label("Tax ID type", exact=True).select_option("eu_vat")
        taxes.get_by_label("Tax ID", exact=True).fill("DE123456789")
        follow(page, js, button(taxes, "Add tax ID"))
        flash(page, "Tax ID DE123456789 was added.")
        item = taxes.get_by_role("listitem").filter(has_text="DE123456789")
        expect(item).to_contain_text("EU VAT")
        if js:
            assert_accessible(page, "the billing details with a tax ID on Stripe")
        assert tax_ids_on_stripe(stripe_api, customer) == [("eu_vat", "DE123456789", "DE")]

        follow(page, js, button(item, "Remove"))
        flash(page, "Tax ID DE123456789 was removed.")
        expect(taxes).to_contain_text("No tax IDs yet.")
        assert_stayed_in_document(page, js)
        assert tax_ids_on_stripe(stripe_api, customer) == []
    journey.after_webhooks("/portal/details", "Billing details")
    expect(taxes).to_contain_text("No tax IDs yet.")
    expect(page.get_by_label("City", exact=True)).to_have_value("Berlin")
    expect(page.get_by_label("Shipping city", exact=True)).to_have_value("")
