"""Invoice journeys in Stripe mode, with JavaScript on and off: the open invoice paid on Stripe's
hosted invoice page (Portico learns it from the webhook), and the PDF from Stripe."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from e2e.support.stripe_journeys import (
    StripeJourney,
    open_section,
)
from tests.stripe_api import StripeAPIServer


def test_pay_the_open_invoice_on_the_hosted_invoice_page(
    page: Page,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    request: pytest.FixtureRequest,
) -> None:
    with journey.webhooks_held():
        ids = journey.sign_in("pay")
        open_section(page, "Invoices")
        page.get_by_role("link", name=ids["invoice_number"]).click()
        title = f"Invoice {ids['invoice_number']}"
        expect(page.get_by_role("heading", name=re.compile("^" + re.escape(title)))).to_be_visible()
        detail_url = page.url

        page.get_by_role("button", name="Pay invoice").click()
        page.wait_for_url(re.compile(re.escape(stripe_api.url) + r"/i/in_"), timeout=5000)
        expect(page.get_by_role("heading", name="Acme Cloud")).to_be_visible()
        page.get_by_role("button", name="Pay $58.00").click()
        expect(page.locator(".status")).to_have_text("paid")
        assert stripe_api.get(ids["invoice"])["status"] == "paid"

    journey.assert_mirror_agrees()  # after Stripe's invoice.paid webhook
    page.goto(detail_url)
    heading = page.get_by_role("heading", name=re.compile("^" + re.escape(title)))
    expect(heading).to_contain_text("Paid")
    expect(page.get_by_role("button", name="Pay invoice")).to_have_count(0)


def test_download_the_invoice_pdf(
    page: Page,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
) -> None:
    ids = journey.sign_in("pdf")
    open_section(page, "Invoices")
    page.get_by_role("link", name=ids["invoice_number"]).click()
    link = page.get_by_role("link", name="Download PDF")
    expect(link).to_be_visible()

    # Cross-origin, the download attribute does not apply: the browser opens Stripe's PDF in its
    # own viewer, whose chrome:// and chrome-extension:// resources are not network requests.
    page.route(re.compile(r"^chrome(-extension)?://"), lambda route: route.continue_())
    pdf_url = f"{stripe_api.url}/i/{ids['invoice']}/pdf"
    with page.expect_response(pdf_url) as answer:
        link.click()
    response = answer.value
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert page.context.request.get(pdf_url).body().startswith(b"%PDF-")  # the viewer's bytes
    portico_pdf = page.context.request.get(
        f"{journey.server.base_url}/portal/invoices/{ids['invoice']}/pdf", max_redirects=0
    )
    assert (portico_pdf.status, portico_pdf.headers["location"]) == (303, pdf_url)
    page.wait_for_url(pdf_url)
