"""axe-core on every portal page, and on the forms in their 422 state (JavaScript on only: axe
runs in the page). Pages reached by a GET are loaded whole; the steps that only a POST reaches
(the plan change preview, the cancellation's offer page, forms with errors) are the htmx swaps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from e2e.support.axe import assert_accessible
from e2e.support.customers import (
    changed_features,
    clone_customer,
    features,
    journey_email,
)
from e2e.support.database import PorticoDatabase
from e2e.support.journeys import page_title
from e2e.support.mailbox import Mailbox
from e2e.support.portal import button, follow, heading, open_page, sign_in_to_portal
from e2e.support.server import LiveServer

Fresh = Callable[[str], int]


def with_pause(data: dict) -> None:
    data["subscription_pause"]["enabled"] = True


def check(page: Page, what: str, title: str) -> None:
    expect(page).to_have_title(page_title(title))
    assert_accessible(page, what)


@pytest.mark.parametrize("js", [True], ids=["js-on"])
def test_portal_pages_have_no_accessibility_violations(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("accessibility", js), name="Ari Access")
    subs = f"/portal/subscriptions/{customer.subscription_id}"
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    check(page, "the overview", "Billing overview")

    # Subscriptions
    open_page(page, js, "/portal/subscriptions", "Subscriptions")
    check(page, "the subscriptions list", "Subscriptions")
    open_page(page, js, f"{subs}/change", "Change plan")
    check(page, "the change plan form", "Change plan")
    page.get_by_label("Quantity", exact=True).fill("lots")
    follow(page, js, button(page, "Continue"))
    expect(page.get_by_role("alert")).to_contain_text("Enter the quantity as a whole number")
    check(page, "the change plan form with an error (422)", "Error: Change plan")
    page.get_by_label("Quantity", exact=True).fill("7")
    follow(page, js, button(page, "Continue"))
    expect(heading(page, "Confirm your plan change")).to_be_visible()
    check(page, "the plan change preview", "Confirm your plan change")

    open_page(page, js, f"{subs}/cancel", "Cancel subscription")
    check(page, "the cancellation form", "Cancel subscription")
    page.get_by_role("radio", name="I no longer need it").check()
    follow(page, js, button(page, "Continue"))
    expect(heading(page, "Before you go")).to_be_visible()
    check(page, "the retention offer and cancellation review", "Before you go")

    # Pausing is off in the demo; switched on for this page only.
    pause_was_on = features(portico_db)["subscription_pause"]["enabled"]
    with changed_features(portico_db, with_pause):
        open_page(page, js, f"{subs}/pause", "Pause subscription")
        check(page, "the pause form", "Pause subscription")
        follow(page, js, button(page, "Pause subscription"))
        expect(page.get_by_role("alert")).to_contain_text("Choose how long to pause payments.")
        check(page, "the pause form with an error (422)", "Error: Pause subscription")
    assert features(portico_db)["subscription_pause"]["enabled"] == pause_was_on

    # Payment methods
    open_page(page, js, "/portal/payment-methods", "Payment methods")
    check(page, "the payment methods list", "Payment methods")
    open_page(page, js, "/portal/payment-methods/new", "Add payment method")
    check(page, "the add card form", "Add payment method")
    follow(page, js, button(page, "Add payment method"))
    expect(page.get_by_role("alert")).to_contain_text("Enter the card number.")
    check(page, "the add card form with errors (422)", "Error: Add payment method")
    open_page(
        page,
        js,
        f"/portal/payment-methods/{customer.default_card_id}/remove",
        "Remove Visa ending in 4242?",
    )
    check(page, "the remove card confirmation", "Remove payment method")

    # Invoices
    open_page(page, js, "/portal/invoices", "Invoices")
    check(page, "the invoices list", "Invoices")
    number = customer.open_invoice_number
    page.goto(f"/portal/invoices/{customer.open_invoice_id}")
    expect(page.get_by_role("button", name="Pay invoice")).to_be_visible()
    check(page, "an open invoice", f"Invoice {number}")
    page.goto(f"/portal/invoices/{customer.paid_invoice_id}")
    expect(page.get_by_role("link", name="Download PDF")).to_be_visible()
    check(page, "a paid invoice", f"Invoice {customer.paid_invoice_number}")

    # Billing details
    open_page(page, js, "/portal/details", "Billing details")
    check(page, "the billing details form", "Billing details")
    page.get_by_label("Postal code", exact=True).fill("")
    follow(page, js, button(page, "Save"))
    expect(page.get_by_role("alert")).to_contain_text("Enter the postal code.")
    check(page, "the billing details form with an error (422)", "Error: Billing details")
