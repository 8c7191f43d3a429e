"""A feature the merchant switches off leaves the customer portal, with JavaScript on and off:
the Features page (``/merchant/configurations/{id}/features``), section "Invoice history"."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Locator, Page, expect

from e2e.support.browser import BrowserGuard
from e2e.support.journeys import sign_in, submit
from e2e.support.mailbox import Mailbox
from e2e.support.merchant import (
    Merchant,
    click_and_load,
    merchant_fixture,  # noqa: F401 (the "merchant" fixture)
)
from e2e.support.server import LiveServer

JENNY = "jenny.rosen@example.com"


def save_form_of(page: Page, js: bool, control: Locator) -> None:
    """Press the Save button of the form ``control`` is in: through htmx when the form has
    ``hx-post`` and JavaScript is on, else as a plain form post."""
    form = page.locator("form").filter(has=control)
    button = form.get_by_role("button", name=re.compile(r"^Save\b"))
    name = button.inner_text().strip()
    if js and form.get_attribute("hx-post"):
        submit(page, js, name)
    else:
        click_and_load(page, name)


def invoice_history_switch(page: Page) -> Locator:
    return page.get_by_role("region", name="Invoice history").get_by_role("checkbox")


def invoices_link(customer: Page) -> Locator:
    nav = customer.get_by_role("navigation", name="Account")
    return nav.get_by_role("link", name="Invoices", exact=True)


def test_switched_off_invoice_history_leaves_the_portal(
    context: BrowserContext,
    js: bool,
    merchant: Merchant,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Callable[[str], int],
    guard: BrowserGuard,
) -> None:
    guard.allow_status(404)
    page = merchant.signed_in(context).new_page()
    response = page.goto(merchant.url("features"))
    assert response is not None
    assert response.status == 200
    switch = invoice_history_switch(page)
    expect(switch).to_be_checked()

    customer = context.new_page()
    sign_in(customer, live_server, js, mailbox, JENNY, fresh_email(JENNY))
    expect(invoices_link(customer)).to_be_visible()  # the control

    switch.uncheck()
    save_form_of(page, js, switch)
    expect(invoice_history_switch(page)).not_to_be_checked()
    customer.goto("/portal")
    expect(customer.get_by_role("heading", name="Billing overview")).to_be_visible()
    expect(invoices_link(customer)).to_have_count(0)
    answer = customer.goto("/portal/invoices")
    assert answer is not None
    assert answer.status == 404

    switch = invoice_history_switch(page)
    switch.check()
    save_form_of(page, js, switch)
    expect(invoice_history_switch(page)).to_be_checked()
    customer.goto("/portal")
    expect(invoices_link(customer)).to_be_visible()
    answer = customer.goto("/portal/invoices")
    assert answer is not None
    assert answer.status == 200
