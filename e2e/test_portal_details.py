"""Billing details journey: a new billing address, then an EU VAT number; with JavaScript on and
off, on a copy of Jenny (a San Francisco address, no tax IDs)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from e2e.support.axe import assert_accessible
from e2e.support.customers import clone_customer, journey_email
from e2e.support.database import PorticoDatabase
from e2e.support.mailbox import Mailbox
from e2e.support.portal import (
    assert_stayed_in_document,
    button,
    expect_focus_after_swap,
    flash,
    follow,
    heading,
    open_page,
    sign_in_to_portal,
)
from e2e.support.server import LiveServer

Fresh = Callable[[str], int]
DETAILS = "/portal/details"


def test_update_billing_address_and_add_a_vat_id(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("details", js), name="Alex Moved")
    before = portico_db.query(
        "SELECT address_line1, shipping_address_city FROM billing_customer WHERE id = ?",
        customer.id,
    )[0]
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    open_page(page, js, DETAILS, "Billing details")
    line1 = page.get_by_label("Address line 1", exact=True)
    expect(line1).to_have_value(before["address_line1"] or "")

    line1.fill("Torstra\u00dfe 109")
    page.get_by_label("City", exact=True).fill("Berlin")
    page.get_by_label("State / region", exact=True).fill("")
    page.get_by_label("Postal code", exact=True).fill("10119")
    page.get_by_label("Country", exact=True).select_option(label="Germany")
    follow(page, js, button(page, "Save"))

    expect(heading(page, "Billing details")).to_be_visible()
    expect(flash(page)).to_contain_text("Your billing details were saved.")
    expect_focus_after_swap(js, heading(page, "Billing details"))
    expect(page.get_by_label("Address line 1", exact=True)).to_have_value("Torstra\u00dfe 109")
    expect(page.get_by_label("City", exact=True)).to_have_value("Berlin")
    expect(page.get_by_label("Postal code", exact=True)).to_have_value("10119")
    expect(page.get_by_label("Country", exact=True)).to_have_value("DE")
    # The shipping address was left as it was.
    shipping_city = before["shipping_address_city"] or ""
    expect(page.get_by_label("Shipping city", exact=True)).to_have_value(shipping_city)

    taxes = page.get_by_role("region", name="Tax IDs")
    expect(taxes.get_by_role("listitem").filter(has_text="DE123456789")).to_have_count(0)
    taxes.get_by_label("Tax ID type", exact=True).select_option("eu_vat")
    taxes.get_by_label("Tax ID", exact=True).fill("DE123456789")
    follow(page, js, button(taxes, "Add tax ID"))

    expect(flash(page)).to_contain_text("Tax ID DE123456789 was added.")
    item = taxes.get_by_role("listitem").filter(has_text="DE123456789")
    expect(item).to_be_visible()
    expect(item).to_contain_text("EU VAT")
    expect(button(item, "Remove")).to_be_visible()
    expect(taxes.get_by_label("Tax ID", exact=True)).to_have_value("")
    assert_stayed_in_document(page, js)
    if js:
        assert_accessible(page, "the billing details with a tax ID")

    saved = portico_db.query(
        "SELECT address_line1, address_city, address_postal_code, address_country, "
        "shipping_address_city, COALESCE(address_state, '') AS state "
        "FROM billing_customer WHERE id = ?",
        customer.id,
    )[0]
    assert tuple(saved) == (
        "Torstra\u00dfe 109",
        "Berlin",
        "10119",
        "DE",
        shipping_city or None,
        "",
    )
    tax_ids = portico_db.query(
        "SELECT type, value, country FROM billing_tax_id WHERE customer = ?", customer.id
    )
    assert [tuple(t) for t in tax_ids] == [("eu_vat", "DE123456789", "DE")]

    page.goto("/portal")
    expect(page.get_by_role("region", name="Billing details")).to_contain_text(
        "Torstra\u00dfe 109, Berlin, 10119, DE"
    )
