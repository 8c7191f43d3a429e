"""Customer journeys in Stripe mode, each with JavaScript on and off: the page shows what Stripe
(the test server) has, and every change lands on Stripe."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from e2e.support.database import PorticoDatabase
from e2e.support.journeys import sign_in
from e2e.support.mailbox import Mailbox
from e2e.support.server import LiveServer
from e2e.support.stripe_portico import StripePortico
from e2e.support.stripe_world import StripeWorld, journey_email, seed_customer
from tests.stripe_api import StripeAPIServer

Fresh = Callable[[str], int]


# Without JavaScript, "Pay invoice" is a form POST answered with 303 to Stripe's hosted invoice
# page; the CSP's "form-action 'self'" makes Chrome block that redirect (another origin). Needs
# the hosted pages' origin in form-action in Stripe mode (app/web/security.py).
def signed_in(
    page: Page, js: bool, server: LiveServer, mailbox: Mailbox, fresh: Fresh, email: str
) -> None:
    sign_in(page, server, js, mailbox, email, fresh(email))


def open_section(page: Page, name: str, heading: str | None = None) -> None:
    """Follow a link of the portal's menu."""
    page.get_by_role("navigation", name="Account").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=heading or name, level=1)).to_be_visible()


def flash(page: Page, text: str) -> None:
    expect(page.locator(".flash-region")).to_contain_text(text)


def test_sign_in_finds_a_customer_only_stripe_has(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    portico_db: PorticoDatabase,
) -> None:
    email = f"nia.new.{'js' if js else 'nojs'}@example.com"
    ids = seed_customer(
        stripe_api, stripe_world, email, "Nia New", plan="business", quantity=1, open_invoice=False
    )
    assert not portico_db.query("SELECT id FROM billing_customer WHERE email = ?", email)
    first_invoice = stripe_api.get(stripe_api.get(ids["subscription"])["latest_invoice"])

    signed_in(page, js, live_server, mailbox, fresh_email, email)

    main = page.get_by_role("main")
    expect(main.get_by_text("Nia New", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"^Business\b"), level=3)).to_be_visible()
    expect(page.get_by_role("region", name="Payment method")).to_contain_text("Visa ending in 4242")
    expect(page.get_by_role("region", name="Recent invoices")).to_contain_text(
        first_invoice["number"]
    )
    [row] = portico_db.query("SELECT id FROM billing_customer WHERE email = ?", email)
    assert row["id"] == ids["customer"]


def test_change_plan_with_a_preview_then_confirm(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
) -> None:
    email = journey_email("plan", js)
    subscription = stripe_world.customers[email]["subscription"]
    signed_in(page, js, live_server, mailbox, fresh_email, email)
    open_section(page, "Subscriptions")
    expect(page.get_by_role("heading", name=re.compile(r"^Starter\b"), level=2)).to_be_visible()

    page.get_by_role("button", name="Change plan").click()
    expect(page.get_by_role("heading", name="Change plan", level=1)).to_be_visible()
    page.get_by_label(re.compile(r"^Team — \$29\.00 / month")).check()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Confirm your plan change", level=1)).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Amount due now")
    expect(page.get_by_role("main")).to_contain_text("Unused time on Starter")
    item = stripe_api.get(subscription)["items"]["data"][0]
    assert item["price"]["id"] == stripe_world.price("starter"), "the preview changed Stripe"
    page.get_by_role("button", name="Confirm change").click()

    article = page.get_by_role("article", name=re.compile(r"^Team\b"))
    expect(article).to_contain_text("Team — $29.00 / month per seat")
    expect(page.get_by_role("article", name=re.compile(r"^Starter\b"))).to_have_count(0)
    item = stripe_api.get(subscription)["items"]["data"][0]
    assert (item["price"]["id"], item["quantity"]) == (stripe_world.price("team"), 1)


def test_cancel_at_period_end_with_a_reason_then_renew(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
) -> None:
    email = journey_email("cancel", js)
    subscription = stripe_world.customers[email]["subscription"]
    signed_in(page, js, live_server, mailbox, fresh_email, email)
    open_section(page, "Subscriptions")

    page.get_by_role("button", name="Cancel subscription").click()
    expect(page.get_by_role("heading", name="Cancel subscription", level=1)).to_be_visible()
    page.get_by_label("It's too expensive").check()
    page.get_by_label("Anything else you would like to tell us?").fill("Budget cuts this year.")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Confirm cancellation", level=1)).to_be_visible()
    page.get_by_role("button", name="Confirm cancellation").click()

    card = page.get_by_role("article", name=re.compile(r"Team"))
    expect(card.get_by_text("Cancels soon")).to_be_visible()
    canceled = stripe_api.get(subscription)
    assert canceled["cancel_at_period_end"] is True
    assert canceled["cancellation_details"]["feedback"] == "too_expensive"
    assert canceled["cancellation_details"]["comment"] == "Budget cuts this year."

    card.get_by_role("button", name="Renew subscription").click()
    expect(card.get_by_text("Active", exact=True)).to_be_visible()
    expect(card.get_by_role("button", name="Renew subscription")).to_have_count(0)
    assert stripe_api.get(subscription)["cancel_at_period_end"] is False


def test_add_a_card_through_checkout(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
) -> None:
    email = journey_email("card", js)
    customer = stripe_world.customers[email]["customer"]
    signed_in(page, js, live_server, mailbox, fresh_email, email)
    open_section(page, "Payment methods")
    expect(page.get_by_role("main")).to_contain_text("Mastercard ending in 4444")

    page.get_by_role("link", name="Add payment method").click()
    page.wait_for_url(re.compile(re.escape(stripe_api.url) + r"/c/pay/cs_"))
    expect(page.get_by_role("heading", name="Save a card")).to_be_visible()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Save card").click()

    page.wait_for_url(re.compile(re.escape(live_server.base_url) + r"/portal/payment-methods/?$"))
    flash(page, "Your payment method was added.")
    visa = page.get_by_role("listitem").filter(has_text="Visa ending in 4242")
    expect(visa.get_by_text("Default", exact=True)).to_be_visible()
    expect(
        page.get_by_role("listitem").filter(has_text="Mastercard ending in 4444")
    ).to_be_visible()
    default = stripe_api.get(customer)["invoice_settings"]["default_payment_method"]
    assert stripe_api.get(default)["card"]["last4"] == "4242"


def test_pay_the_open_invoice_on_the_hosted_invoice_page(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
    request: pytest.FixtureRequest,
) -> None:
    email = journey_email("pay", js)
    ids = stripe_world.customers[email]
    signed_in(page, js, live_server, mailbox, fresh_email, email)
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

    stripe_portico.relay.flush()  # Stripe's invoice.paid webhook reaches Portico
    page.goto(detail_url)
    heading = page.get_by_role("heading", name=re.compile("^" + re.escape(title)))
    expect(heading).to_contain_text("Paid")
    expect(page.get_by_role("button", name="Pay invoice")).to_have_count(0)


def test_download_the_invoice_pdf(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
) -> None:
    email = journey_email("pdf", js)
    ids = stripe_world.customers[email]
    signed_in(page, js, live_server, mailbox, fresh_email, email)
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
        f"{live_server.base_url}/portal/invoices/{ids['invoice']}/pdf", max_redirects=0
    )
    assert (portico_pdf.status, portico_pdf.headers["location"]) == (303, pdf_url)
    page.wait_for_url(pdf_url)
