"""Payment method journeys: a declined test card, then adding a good one, making it the default
and removing the old card through its confirmation page; with JavaScript on and off, on a copy of
Jenny (Visa 4242 by default)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from e2e.support.axe import assert_accessible
from e2e.support.customers import PortalCustomer, clone_customer, journey_email
from e2e.support.database import PorticoDatabase
from e2e.support.journeys import page_title
from e2e.support.mailbox import Mailbox
from e2e.support.portal import (
    assert_stayed_in_document,
    button,
    expect_focus_after_swap,
    flash,
    follow,
    heading,
    link,
    open_page,
    sign_in_to_portal,
)
from e2e.support.server import LiveServer

Fresh = Callable[[str], int]
LIST = "/portal/payment-methods"
VISA = "Visa ending in 4242"


def fill_card(page: Page, number: str, expiry: str = "04 / 31", cvc: str = "123") -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry").fill(expiry)
    page.get_by_label("CVC").fill(cvc)


def cards(page: Page) -> Locator:
    return page.locator(".pm-list > li")


def cards_of(db: PorticoDatabase, customer: PortalCustomer) -> list[str]:
    rows = db.query("SELECT id FROM billing_payment_method WHERE customer = ?", customer.id)
    return [row["id"] for row in rows]


def default_card_of(db: PorticoDatabase, customer: PortalCustomer) -> str:
    return db.query(
        "SELECT invoice_settings_default_payment_method AS pm FROM billing_customer WHERE id = ?",
        customer.id,
    )[0]["pm"]


def test_add_card_make_default_and_remove_the_old_one(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("cards", js), name="Dana Cards")
    old_id = customer.default_card_id
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    open_page(page, js, LIST, "Payment methods")
    expect(cards(page)).to_have_count(1)
    old = page.locator(f"#card-{old_id}")
    expect(old).to_contain_text(VISA)
    expect(old).to_contain_text("Default")

    follow(page, js, link(page, "Add payment method"))
    expect(heading(page, "Add payment method")).to_be_visible()
    expect_focus_after_swap(js, page.get_by_label("Card number"))
    expect(page.get_by_label("Use as default payment method")).to_be_checked()

    # A declined test card: the message beside the number, which is not written back.
    fill_card(page, "4000 0000 0000 0002")
    follow(page, js, button(page, "Add payment method"))
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined.")
    # Focus goes to the error summary (its link leads to the field).
    expect_focus_after_swap(js, page.get_by_role("alert"))
    expect(page.get_by_role("alert").get_by_role("link")).to_have_attribute("href", "#number")
    number = page.get_by_label("Card number")
    expect(number).to_have_value("")
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#number-error")).to_have_text("Error: Your card was declined.")
    expect(page.get_by_label("CVC")).to_have_value("")
    expect(page.get_by_label("Expiry")).to_have_value("04 / 31")
    expect(page).to_have_title(page_title("Error: Add payment method"))
    assert cards_of(portico_db, customer) == [old_id]

    # A good test card, not made the default yet.
    fill_card(page, "4242 4242 4242 4242", expiry="04 / 31")
    page.get_by_label("Use as default payment method").uncheck()
    follow(page, js, button(page, "Add payment method"))
    expect(heading(page, "Payment methods")).to_be_visible()
    expect(flash(page)).to_contain_text("Your card was added.")
    expect(cards(page)).to_have_count(2)
    new_ids = [pm for pm in cards_of(portico_db, customer) if pm != old_id]
    assert len(new_ids) == 1, new_ids
    new = page.locator(f"#card-{new_ids[0]}")
    expect(new).to_contain_text(VISA)
    expect(new).to_contain_text("Expires 04/2031")
    expect(new.get_by_text("Default", exact=True)).to_have_count(0)
    assert default_card_of(portico_db, customer) == old_id

    follow(page, js, button(new, "Make default"))
    expect(flash(page)).to_contain_text(f"{VISA} is now your default payment method.")
    expect(new.get_by_text("Default", exact=True)).to_be_visible()
    expect(old.get_by_text("Default", exact=True)).to_have_count(0)
    assert default_card_of(portico_db, customer) == new_ids[0]

    follow(page, js, link(old, "Remove"))
    expect(heading(page, f"Remove {VISA}?")).to_be_visible()
    expect_focus_after_swap(js, heading(page, f"Remove {VISA}?"))
    expect(page.get_by_role("main")).not_to_contain_text("This is your default payment method.")
    expiry = portico_db.query(
        "SELECT card_exp_month AS m, card_exp_year AS y FROM billing_payment_method WHERE id = ?",
        old_id,
    )[0]
    expect(page.get_by_role("main")).to_contain_text(f"Expires {expiry['m']:02d}/{expiry['y']}")
    follow(page, js, button(page, "Remove"))
    expect(heading(page, "Payment methods")).to_be_visible()
    expect(flash(page)).to_contain_text(f"{VISA} was removed.")
    expect(cards(page)).to_have_count(1)
    expect(new).to_contain_text("Default")
    expect(old).to_have_count(0)
    assert_stayed_in_document(page, js)
    if js:
        assert_accessible(page, "the payment methods after removing a card")
    assert cards_of(portico_db, customer) == new_ids
