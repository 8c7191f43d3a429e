"""Invoice journeys: paying the open invoice, downloading a PDF, and the invoice pages gone when
the merchant switches invoice history off; with JavaScript on and off, on a copy of Jenny (one
open invoice, a paid history)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from pypdf import PdfReader

from e2e.support.axe import assert_accessible
from e2e.support.browser import BrowserGuard
from e2e.support.customers import changed_features, clone_customer, journey_email
from e2e.support.database import PorticoDatabase
from e2e.support.journeys import csrf_token
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
LIST = "/portal/invoices"


def invoice_heading(number: str) -> re.Pattern[str]:
    """The invoice page's h1: "Invoice <number>" and its status badge."""
    return re.compile("^Invoice " + re.escape(number) + r"\b")


def test_pay_the_open_invoice(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("pay_invoice", js), name="Pat Payer")
    number = customer.open_invoice_number
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    open_page(page, js, LIST, "Invoices")
    row = page.get_by_role("row").filter(has=link(page, number))
    expect(row).to_contain_text("Open")

    follow(page, js, link(page, number))
    expect(heading(page, invoice_heading(number))).to_contain_text("Open")
    expect_focus_after_swap(js, heading(page, invoice_heading(number)))
    expect(page).to_have_url(re.compile(f"/portal/invoices/{customer.open_invoice_id}$"))
    pay = page.get_by_role("region", name="Pay this invoice")
    expect(pay).to_contain_text("will be charged to Visa ending in 4242")
    follow(page, js, button(pay, "Pay invoice"))

    expect(flash(page)).to_contain_text(f"Invoice {number} was paid.")
    expect(heading(page, invoice_heading(number))).to_contain_text("Paid")
    expect(page.get_by_role("region", name="Pay this invoice")).to_have_count(0)
    summary = page.get_by_role("region", name="Summary")
    expect(summary.locator("dt", has_text="Paid on")).to_be_visible()
    expect(summary.locator("dt", has_text="Amount due").locator("+ dd")).to_have_text("$0.00")
    assert_stayed_in_document(page, js)
    if js:
        assert_accessible(page, "a paid invoice and its flash")
    rows = portico_db.query(
        "SELECT status, amount_remaining FROM billing_invoice WHERE id = ?",
        customer.open_invoice_id,
    )
    assert (rows[0]["status"], rows[0]["amount_remaining"]) == ("paid", 0)

    # The address bar's URL (pushed by htmx with JS on) loads the whole page.
    expect(page).to_have_url(re.compile(f"/portal/invoices/{customer.open_invoice_id}$"))
    page.reload()
    expect(heading(page, invoice_heading(number))).to_contain_text("Paid")
    expect(page.get_by_role("navigation", name="Account")).to_be_visible()
    expect(flash(page)).not_to_contain_text("was paid")  # shown once


def test_download_invoice_pdf(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("invoice_pdf", js), name="Riley Records")
    number = customer.paid_invoice_number
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    open_page(page, js, f"{LIST}/{customer.paid_invoice_id}", invoice_heading(number))

    with page.expect_download() as started:
        link(page, "Download PDF").click()
    download = started.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".pdf"), download.suggested_filename
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF"), data[:16]
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)
    assert number in text, text[:500]
    assert customer.name in text
    # The page is still there (a download, not a navigation).
    expect(heading(page, invoice_heading(number))).to_be_visible()
    assert_stayed_in_document(page, js)


def without_invoice_history(features: dict) -> None:
    features["invoice_history"]["enabled"] = False


def test_invoice_history_switched_off(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
    guard: BrowserGuard,
) -> None:
    guard.allow_status(404)
    customer = clone_customer(portico_db, journey_email("no_invoices", js), name="Sky Hidden")
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    nav = page.get_by_role("navigation", name="Account")
    expect(link(nav, "Invoices")).to_be_visible()  # the control: on by default
    expect(page.get_by_role("region", name="Recent invoices")).to_be_visible()

    with changed_features(portico_db, without_invoice_history):
        page.reload()
        expect(heading(page, "Billing overview")).to_be_visible()
        expect(link(nav, "Invoices")).to_have_count(0)
        expect(link(nav, "Subscriptions")).to_be_visible()
        expect(page.get_by_role("region", name="Recent invoices")).to_have_count(0)
        token = csrf_token(page)
        for path in (
            LIST,
            f"{LIST}/{customer.open_invoice_id}",
            f"{LIST}/{customer.paid_invoice_id}/pdf",
        ):
            response = page.goto(path)
            assert response is not None
            assert response.status == 404, f"{path} answered {response.status}"
            expect(page.get_by_role("heading", name="Invoice")).to_have_count(0)
        answer = page.context.request.post(
            f"{LIST}/{customer.open_invoice_id}/pay",
            form={"_csrf_token": token, "intent": "x"},
            max_redirects=0,
        )
        assert answer.status == 404, answer.status

    page.goto("/portal")
    expect(link(nav, "Invoices")).to_be_visible()
