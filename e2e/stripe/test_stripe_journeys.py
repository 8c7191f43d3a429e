"""Customer journeys in Stripe mode, each with JavaScript on and off: the page shows what Stripe
(the test server) has, and every change lands on Stripe."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from app.billing.demo_offers import RETENTION_COUPON, WELCOME_CODE, WELCOME_COUPON
from e2e.support.axe import assert_accessible
from e2e.support.customers import changed_features
from e2e.support.database import PorticoDatabase
from e2e.support.mailbox import Mailbox
from e2e.support.portal import (
    PostCounter,
    assert_stayed_in_document,
    button,
    follow,
    follow_to_new_content,
    heading,
    open_page,
    sign_in_to_portal,
)
from e2e.support.server import LiveServer
from e2e.support.stripe_mirror import mirror_differences
from e2e.support.stripe_portico import StripePortico
from e2e.support.stripe_world import StripeWorld, journey_email, seed_customer
from tests.stripe_api import StripeAPIServer
from tests.stripe_api.app import RecordedRequest

Fresh = Callable[[str], int]
CODES_PER_MINUTE = 25
TIMES = "\u00d7"  # the multiplication sign between a plan and its quantity


def signed_in(
    page: Page, js: bool, server: LiveServer, mailbox: Mailbox, fresh: Fresh, email: str
) -> None:
    """Signed in through the login link. Passcode requests are paced under the server's per-IP
    limit (30 a minute); the Stripe-mode server is a process of its own that only these journeys
    sign in to, so they may use most of it."""
    sign_in_to_portal(page, server, js, mailbox, fresh, email, codes_per_minute=CODES_PER_MINUTE)


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
    stripe_portico: StripePortico,
) -> None:
    email = f"nia.new.{'js' if js else 'nojs'}@example.com"
    # Webhooks held: the new customer's events would otherwise bring it into the mirror before
    # the sign-in has to ask Stripe for it.
    with stripe_portico.relay.held():
        ids = seed_customer(
            stripe_api,
            stripe_world,
            email,
            "Nia New",
            plan="business",
            quantity=1,
            open_invoice=False,
        )
        assert not portico_db.query("SELECT id FROM billing_customer WHERE email = ?", email)
        first_invoice = stripe_api.get(stripe_api.get(ids["subscription"])["latest_invoice"])

        signed_in(page, js, live_server, mailbox, fresh_email, email)

        main = page.get_by_role("main")
        expect(main.get_by_text("Nia New", exact=True)).to_be_visible()
        expect(
            page.get_by_role("heading", name=re.compile(r"^Business\b"), level=3)
        ).to_be_visible()
        expect(page.get_by_role("region", name="Payment method")).to_contain_text(
            "Visa ending in 4242"
        )
        expect(page.get_by_role("region", name="Recent invoices")).to_contain_text(
            first_invoice["number"]
        )
        [row] = portico_db.query("SELECT id FROM billing_customer WHERE email = ?", email)
        assert row["id"] == ids["customer"]
    assert_mirror_agrees(stripe_portico, ids["customer"])


def test_change_plan_with_a_preview_then_confirm(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("plan", js)
    subscription = stripe_world.customers[email]["subscription"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        open_section(page, "Subscriptions")
        expect(page.get_by_role("heading", name=re.compile(r"^Starter\b"), level=2)).to_be_visible()

        page.get_by_role("button", name="Change plan").click()
        expect(page.get_by_role("heading", name="Change plan", level=1)).to_be_visible()
        page.get_by_label(re.compile(r"^Team — \$29\.00 / month")).check()
        page.get_by_role("button", name="Continue").click()

        expect(
            page.get_by_role("heading", name="Confirm your plan change", level=1)
        ).to_be_visible()
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
    assert_mirror_agrees(stripe_portico, stripe_world.customers[email]["customer"])


def test_cancel_at_period_end_with_a_reason_then_renew(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("cancel", js)
    subscription = stripe_world.customers[email]["subscription"]
    with stripe_portico.relay.held():
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
    assert_mirror_agrees(stripe_portico, stripe_world.customers[email]["customer"])


def test_add_a_card_through_checkout(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("card", js)
    customer = stripe_world.customers[email]["customer"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        open_section(page, "Payment methods")
        expect(page.get_by_role("main")).to_contain_text("Mastercard ending in 4444")

        checkout = re.compile(re.escape(stripe_api.url) + r"/c/pay/cs_")
        payment_methods = re.compile(
            re.escape(live_server.base_url) + r"/portal/payment-methods/?$"
        )

        # Changing one's mind on Stripe's page: back to the list, nothing added.
        page.get_by_role("link", name="Add payment method").click()
        page.wait_for_url(checkout)
        expect(page.get_by_role("heading", name="Save a card")).to_be_visible()
        page.get_by_role("link", name="Cancel").click()
        page.wait_for_url(payment_methods)
        expect(page.get_by_role("heading", name="Payment methods", level=1)).to_be_visible()
        expect(page.locator(".pm-list > li")).to_have_count(1)
        attached = stripe_api.call("GET", "/v1/payment_methods", customer=customer)["data"]
        assert [pm["card"]["last4"] for pm in attached] == ["4444"]

        page.get_by_role("link", name="Add payment method").click()
        page.wait_for_url(checkout)
        expect(page.get_by_role("heading", name="Save a card")).to_be_visible()
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_role("button", name="Save card").click()

        page.wait_for_url(payment_methods)
        flash(page, "Your payment method was added.")
        visa = page.get_by_role("listitem").filter(has_text="Visa ending in 4242")
        expect(visa.get_by_text("Default", exact=True)).to_be_visible()
        expect(
            page.get_by_role("listitem").filter(has_text="Mastercard ending in 4444")
        ).to_be_visible()
        default = stripe_api.get(customer)["invoice_settings"]["default_payment_method"]
        assert stripe_api.get(default)["card"]["last4"] == "4242"
    assert_mirror_agrees(stripe_portico, customer)


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
    with stripe_portico.relay.held():
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

    assert_mirror_agrees(stripe_portico, ids["customer"])  # after Stripe's invoice.paid webhook
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


# -- helpers of the journeys below --------------------------------------------------------------
SUBSCRIPTIONS = "/portal/subscriptions"


def subscription_writes(stripe_api: StripeAPIServer, subscription: str) -> list[RecordedRequest]:
    """The updates Stripe applied to a subscription (failures and idempotent replays left out)."""
    return [
        r
        for r in stripe_api.requests
        if r.method == "POST"
        and r.path == f"/v1/subscriptions/{subscription}"
        and r.status == 200
        and not r.replayed
    ]


def with_retention_offer(features: dict[str, Any]) -> None:
    """The demo's retention coupon (synced from Stripe) offered before a cancellation."""
    features["subscription_cancel"]["retention_coupon"] = RETENTION_COUPON


def cancelling_now_with_offer(features: dict[str, Any]) -> None:
    with_retention_offer(features)
    features["subscription_cancel"]["mode"] = "immediately"


def with_pause(features: dict[str, Any]) -> None:
    features["subscription_pause"]["enabled"] = True


def coupon_of(discount: dict[str, Any]) -> str:
    """A discount's coupon id (``source.coupon`` in current API versions)."""
    coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
    return coupon["id"] if isinstance(coupon, dict) else coupon


def assert_mirror_agrees(stripe_portico: StripePortico, customer: str) -> None:
    """Once Stripe's webhooks for the journey's changes reached Portico (which re-fetches the
    objects they name), the mirror agrees with Stripe on the customer's objects."""
    stripe_portico.relay.flush()
    db = PorticoDatabase(stripe_portico.server.db_path)
    differences = mirror_differences(db, stripe_portico.relay.stripe_api, customer)
    assert not differences, "the mirror differs from Stripe:\n" + "\n".join(differences)


def after_webhooks(
    page: Page, stripe_portico: StripePortico, customer: str, path: str, title: str
) -> None:
    """``assert_mirror_agrees``, then load the page again (the caller checks it still shows the
    change)."""
    assert_mirror_agrees(stripe_portico, customer)
    page.goto(path)
    expect(heading(page, title)).to_be_visible()


def cents(text: str) -> int:
    """The first dollar amount in a text, in cents ("$1,234.50 on …" → 123450)."""
    found = re.search(r"\$([\d,]+)\.(\d\d)", text)
    assert found, f"no amount in {text!r}"
    return int(found[1].replace(",", "")) * 100 + int(found[2])


def filled(address: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (address or {}).items() if value}


def tax_ids_on_stripe(stripe_api: StripeAPIServer, customer: str) -> list[tuple[str, str, str]]:
    listed = stripe_api.call("GET", f"/v1/customers/{customer}/tax_ids")
    return [(t["type"], t["value"], t["country"]) for t in listed["data"]]


# -- more journeys --------------------------------------------------------------------------------
def test_change_quantity_with_a_preview_then_confirm(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("quantity", js)
    subscription = stripe_world.customers[email]["subscription"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
        card = page.locator(f"#sub-{subscription}")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 5")

        follow(page, js, button(card, "Change plan"))
        expect(heading(page, "Change plan")).to_be_visible()
        quantity = page.get_by_label("Quantity", exact=True)
        expect(quantity).to_have_value("5")
        quantity.fill("8")
        follow(page, js, button(page, "Continue"))

        expect(heading(page, "Confirm your plan change")).to_be_visible()
        lines = page.get_by_role("table", name="Charges and credits for this change")
        expect(lines.get_by_role("row").filter(has_text="Unused time on")).to_have_count(1)
        expect(lines.get_by_role("row").filter(has_text="Remaining time on")).to_have_count(1)
        main = page.get_by_role("main")
        expect(main.locator("dt", has_text="New plan").locator("+ dd")).to_contain_text(
            f"{TIMES} 8"
        )
        # Prorations go on the next invoice (the configuration's "create_prorations").
        expect(main.locator("dt", has_text="Amount due now").locator("+ dd")).to_have_text("$0.00")
        next_invoice = main.locator("dt", has_text="Next invoice").locator("+ dd")
        expect(next_invoice).to_have_text(re.compile(r"^\$[\d,]+\.\d\d on \w"))
        previewed = cents(next_invoice.inner_text())
        assert stripe_api.get(subscription)["items"]["data"][0]["quantity"] == 5, "preview wrote"
        writes_before = len(subscription_writes(stripe_api, subscription))
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 8")
        assert_stayed_in_document(page, js)
        writes = subscription_writes(stripe_api, subscription)[writes_before:]
        assert len(writes) == 1, [w.params for w in writes]
        item = stripe_api.get(subscription)["items"]["data"][0]
        assert (item["price"]["id"], item["quantity"]) == (stripe_world.price("team"), 8)
        # The next invoice Stripe now has in store is the one previewed (give or take a cent: the
        # prorations are a few seconds shorter than when they were previewed).
        upcoming = stripe_api.call("POST", "/v1/invoices/create_preview", subscription=subscription)
        assert abs(upcoming["amount_due"] - previewed) <= 1, (upcoming["amount_due"], previewed)

        # Back. JS on: the plan form htmx pushed, loaded whole. JS off: the browser posts the
        # preview's form again; the change is made, so the plan form says so. Stripe is not asked
        # to change anything again.
        page.go_back()
        expect(heading(page, "Change plan")).to_be_visible()
        if js:
            expect(page.get_by_label("Quantity", exact=True)).to_have_value("8")
        else:
            expect(page.get_by_role("alert")).to_contain_text("Choose a different plan or quantity")
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        SUBSCRIPTIONS,
        "Subscriptions",
    )
    expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 8")
    assert len(subscription_writes(stripe_api, subscription)[writes_before:]) == 1


def test_a_cheaper_plan_waits_for_the_period_end(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    # Team with 5 seats ($145 a month) to Business ($99): cheaper, so the configuration's
    # "decreasing_item_amount" rule schedules it for the period end (a subscription schedule).
    email = journey_email("later", js)
    subscription = stripe_world.customers[email]["subscription"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
        card = page.locator(f"#sub-{subscription}")
        follow(page, js, button(card, "Change plan"))
        expect(heading(page, "Change plan")).to_be_visible()
        page.get_by_role("radio", name=re.compile(r"^Business — \$99\.00 \/ month")).check()
        page.get_by_label("Quantity", exact=True).fill("1")
        follow(page, js, button(page, "Continue"))

        expect(heading(page, "Confirm your plan change")).to_be_visible()
        main = page.get_by_role("main")
        expect(main).to_contain_text("at the end of your current billing period")
        expect(main.locator("dt", has_text="Amount due now").locator("+ dd")).to_have_text("$0.00")
        expect(main.locator("dt", has_text="Next invoice").locator("+ dd")).to_contain_text(
            "$99.00"
        )
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan will change on")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 5")
        expect(card).to_contain_text("Changes to Business on")
        if js:
            assert_accessible(page, "the list with a change scheduled on Stripe")
        assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        item = on_stripe["items"]["data"][0]
        assert (item["price"]["id"], item["quantity"]) == (stripe_world.price("team"), 5)
        schedule = stripe_api.get(on_stripe["schedule"])
        assert schedule["status"] == "active"
        now, then = schedule["phases"]
        assert now["end_date"] == then["start_date"] == item["current_period_end"]
        [later] = then["items"]
        assert (later["price"], later["quantity"]) == (stripe_world.price("business"), 1)
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        SUBSCRIPTIONS,
        "Subscriptions",
    )
    expect(card).to_contain_text("Changes to Business on")


def test_change_quantity_with_a_promotion_code(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("promo", js)
    subscription = stripe_world.customers[email]["subscription"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
        card = page.locator(f"#sub-{subscription}")
        follow(page, js, button(card, "Change plan"))
        expect(heading(page, "Change plan")).to_be_visible()
        page.get_by_label("Quantity", exact=True).fill("6")
        page.get_by_label("Promotion code", exact=True).fill("NOPE")
        follow(page, js, button(page, "Continue"))
        expect(page.get_by_role("alert")).to_contain_text("There is a problem")
        expect(page.get_by_label("Promotion code", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )

        page.get_by_label("Promotion code", exact=True).fill(WELCOME_CODE.lower())
        follow(page, js, button(page, "Continue"))
        expect(heading(page, "Confirm your plan change")).to_be_visible()
        promotion = (
            page.get_by_role("main").locator("dt", has_text="Promotion code").locator("+ dd")
        )
        expect(promotion).to_contain_text("10% off your next invoice")
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 6")
        expect(card.locator("dt", has_text="Discount").locator("+ dd")).to_contain_text("10% off")
        assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        assert on_stripe["items"]["data"][0]["quantity"] == 6
        [discount_id] = on_stripe["discounts"]
        discount = stripe_api.get(discount_id)
        assert coupon_of(discount) == WELCOME_COUPON
        assert stripe_api.get(discount["promotion_code"])["code"] == WELCOME_CODE
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        SUBSCRIPTIONS,
        "Subscriptions",
    )
    expect(card.locator("dt", has_text="Discount").locator("+ dd")).to_contain_text("10% off")


def invoicing_now(features: dict[str, Any]) -> None:
    features["subscription_update"]["proration_behavior"] = "always_invoice"


def double_click(page: Page, js: bool, target: Locator) -> None:
    """Click a submit button twice in quick succession, as an impatient customer does."""
    if js:
        target.dblclick()
        return
    with page.expect_navigation():
        target.dblclick()


def invoices_of(stripe_api: StripeAPIServer, customer: str) -> list[dict[str, Any]]:
    return stripe_api.call("GET", "/v1/invoices", customer=customer, limit=100)["data"]


def test_more_seats_invoiced_now(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
    portico_db: PorticoDatabase,
) -> None:
    # "always_invoice": the prorations are invoiced and charged at once; the preview's amount due
    # now is what Stripe then charges, and the invoice is in the list straight away.
    email = journey_email("invoice_now", js)
    ids = stripe_world.customers[email]
    before = {invoice["id"] for invoice in invoices_of(stripe_api, ids["customer"])}
    signed_in(page, js, live_server, mailbox, fresh_email, email)
    with stripe_portico.relay.held(), changed_features(portico_db, invoicing_now):
        open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
        card = page.locator(f"#sub-{ids['subscription']}")
        follow(page, js, button(card, "Change plan"))
        expect(heading(page, "Change plan")).to_be_visible()
        page.get_by_label("Quantity", exact=True).fill("7")
        follow(page, js, button(page, "Continue"))

        expect(heading(page, "Confirm your plan change")).to_be_visible()
        due_now = page.get_by_role("main").locator("dt", has_text="Amount due now")
        expect(due_now.locator("+ dd")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
        previewed = cents(due_now.locator("+ dd").inner_text())
        assert previewed > 0
        # A double click: the form's one-time key makes it one change and one charge.
        posts = PostCounter(page)
        writes_before = len(subscription_writes(stripe_api, ids["subscription"]))
        double_click(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 7")
        assert posts.count >= 1
        assert len(subscription_writes(stripe_api, ids["subscription"])) == writes_before + 1
        [invoice] = [i for i in invoices_of(stripe_api, ids["customer"]) if i["id"] not in before]
        assert (invoice["billing_reason"], invoice["status"]) == ("subscription_update", "paid")
        assert abs(invoice["amount_paid"] - previewed) <= 1, (invoice["amount_paid"], previewed)

        follow(
            page,
            js,
            page.get_by_role("navigation", name="Account").get_by_role("link", name="Invoices"),
        )
        expect(heading(page, "Invoices")).to_be_visible()
        row = page.get_by_role("row").filter(has_text=invoice["number"])
        expect(row).to_contain_text("Paid")
        expect(row).to_contain_text(f"${invoice['total'] / 100:,.2f}")
    assert_mirror_agrees(stripe_portico, ids["customer"])


def test_changing_plan_ends_the_trial(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    # "end_trial": a change during the trial ends it, and the new plan is invoiced in full.
    # (A cheaper plan would wait for the trial's end, by the "decreasing_item_amount" rule.)
    email = journey_email("trial", js)
    ids = stripe_world.customers[email]
    assert stripe_api.get(ids["subscription"])["status"] == "trialing"
    signed_in(page, js, live_server, mailbox, fresh_email, email)
    with stripe_portico.relay.held():
        open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
        card = page.locator(f"#sub-{ids['subscription']}")
        expect(card.locator("dt", has_text="Trial ends")).to_be_visible()
        follow(page, js, button(card, "Change plan"))
        expect(heading(page, "Change plan")).to_be_visible()
        page.get_by_label("Quantity", exact=True).fill("6")
        follow(page, js, button(page, "Continue"))

        expect(heading(page, "Confirm your plan change")).to_be_visible()
        main = page.get_by_role("main")
        expect(main).to_contain_text("Your free trial ends when you confirm this change.")
        due_now = main.locator("dt", has_text="Amount due now").locator("+ dd")
        expect(due_now).to_have_text("$174.00")
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 6")
        expect(card.locator("dt", has_text="Trial ends")).to_have_count(0)
        on_stripe = stripe_api.get(ids["subscription"])
        assert on_stripe["status"] == "active"
        latest = stripe_api.get(on_stripe["latest_invoice"])
        assert (latest["status"], latest["amount_paid"]) == ("paid", 17400)
        expect(card.locator("dt", has_text="Next charge").locator("+ dd")).to_contain_text(
            "$174.00"
        )
    assert_mirror_agrees(stripe_portico, ids["customer"])


def test_cancel_accepting_the_retention_offer(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    portico_db: PorticoDatabase,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("offer", js)
    subscription = stripe_world.customers[email]["subscription"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        with changed_features(portico_db, with_retention_offer):
            open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
            card = page.locator(f"#sub-{subscription}")
            follow(page, js, button(card, "Cancel subscription"))
            expect(heading(page, "Cancel subscription")).to_be_visible()
            page.get_by_role("radio", name="It's too expensive").check()
            follow(page, js, button(page, "Continue"))

            expect(heading(page, "Before you go")).to_be_visible()
            offer = page.locator("#offer")
            expect(offer).to_contain_text("Stay with us and get 20% off for 3 months.")
            follow(page, js, button(offer, "Accept offer"))

            flash(page, "Thank you for staying: 20% off for 3 months has been applied")
            discount = card.locator("dt", has_text="Discount").locator("+ dd")
            expect(discount).to_contain_text("20% off for 3 months")
            if js:
                assert_accessible(page, "the list with the retention coupon from Stripe")
            expect(card.get_by_role("heading", level=2)).not_to_contain_text("Cancels soon")
            expect(button(card, "Cancel subscription")).to_be_visible()
            assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        assert (on_stripe["status"], on_stripe["cancel_at_period_end"]) == ("active", False)
        [discount_id] = on_stripe["discounts"]
        assert coupon_of(stripe_api.get(discount_id)) == RETENTION_COUPON
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        SUBSCRIPTIONS,
        "Subscriptions",
    )
    expect(card.locator("dt", has_text="Discount").locator("+ dd")).to_contain_text("20% off")


def test_cancel_immediately_declining_the_offer(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    portico_db: PorticoDatabase,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("cancel_now", js)
    subscription = stripe_world.customers[email]["subscription"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        with changed_features(portico_db, cancelling_now_with_offer):
            open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
            card = page.locator(f"#sub-{subscription}")
            follow(page, js, button(card, "Cancel subscription"))
            expect(heading(page, "Cancel subscription")).to_be_visible()
            expect(page.get_by_role("main")).to_contain_text(
                "your subscription ends immediately and you lose access straight away"
            )
            page.get_by_role("radio", name="I found an alternative").check()
            page.get_by_label("Anything else you would like to tell us?").fill("Moving on, thanks.")
            follow(page, js, button(page, "Continue"))

            expect(heading(page, "Before you go")).to_be_visible()
            expect(page.locator("#offer")).to_contain_text("20% off for 3 months")
            expect(page.get_by_role("main")).to_contain_text(
                "Your subscription will end immediately"
            )
            follow(page, js, button(page, "Confirm cancellation"))

            flash(page, "Your subscription was canceled immediately.")
            expect(card.get_by_role("heading", level=2)).to_contain_text("Canceled")
            expect(button(card, "Cancel subscription")).to_have_count(0)
            assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        assert on_stripe["status"] == "canceled"
        assert on_stripe["ended_at"] is not None
        details = on_stripe["cancellation_details"]
        assert (details["feedback"], details["comment"]) == (
            "switched_service",
            "Moving on, thanks.",
        )
        assert on_stripe["discounts"] == []  # the offer was declined
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        SUBSCRIPTIONS,
        "Subscriptions",
    )
    expect(card.get_by_role("heading", level=2)).to_contain_text("Canceled")


def test_pause_payments_until_a_date_then_resume(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    portico_db: PorticoDatabase,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("pause", js)
    subscription = stripe_world.customers[email]["subscription"]
    resume_on = datetime.now(UTC).date() + timedelta(days=14)
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        with changed_features(portico_db, with_pause):
            open_page(page, js, SUBSCRIPTIONS, "Subscriptions")
            card = page.locator(f"#sub-{subscription}")
            follow(page, js, button(card, "Pause subscription"))
            expect(heading(page, "Pause subscription")).to_be_visible()
            page.get_by_role("radio", name="Until a date").check()
            page.get_by_label("Resume on", exact=True).fill(resume_on.isoformat())
            follow(page, js, button(page, "Pause subscription"))

            flash(page, "Payments are paused until")
            expect(card).to_contain_text("Payments paused until")
            expect(button(card, "Resume subscription")).to_be_visible()
            if js:
                assert_accessible(page, "the list with payments paused on Stripe")
            resumes_at = int(datetime.combine(resume_on, time(0), tzinfo=UTC).timestamp())
            pause = stripe_api.get(subscription)["pause_collection"]
            assert pause == {"behavior": "void", "resumes_at": resumes_at}

            follow(page, js, button(card, "Resume subscription"))
            flash(page, "Payments have resumed.")
            expect(card).not_to_contain_text("Payments paused")
            expect(button(card, "Pause subscription")).to_be_visible()
            assert_stayed_in_document(page, js)
        assert stripe_api.get(subscription)["pause_collection"] is None
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        SUBSCRIPTIONS,
        "Subscriptions",
    )
    expect(card).not_to_contain_text("Payments paused")


def test_make_another_card_default_and_remove_the_old_one(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("cards", js)
    ids = stripe_world.customers[email]
    visa, mastercard = ids["payment_method"], ids["second_payment_method"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
        open_page(page, js, "/portal/payment-methods", "Payment methods")
        old, new = page.locator(f"#card-{visa}"), page.locator(f"#card-{mastercard}")
        expect(old).to_contain_text("Visa ending in 4242")
        expect(old.get_by_text("Default", exact=True)).to_be_visible()
        expect(new).to_contain_text("Mastercard ending in 4444")

        follow(page, js, button(new, "Make default"))
        flash(page, "Mastercard ending in 4444 is now your default payment method.")
        expect(new.get_by_text("Default", exact=True)).to_be_visible()
        expect(old.get_by_text("Default", exact=True)).to_have_count(0)
        default = stripe_api.get(ids["customer"])["invoice_settings"]["default_payment_method"]
        assert default == mastercard

        follow(page, js, old.get_by_role("link", name="Remove", exact=True))
        expect(heading(page, "Remove Visa ending in 4242?")).to_be_visible()
        follow(page, js, button(page, "Remove"))
        flash(page, "Visa ending in 4242 was removed.")
        expect(old).to_have_count(0)
        expect(new.get_by_text("Default", exact=True)).to_be_visible()
        assert_stayed_in_document(page, js)
        assert stripe_api.get(visa)["customer"] is None
        default = stripe_api.get(ids["customer"])["invoice_settings"]["default_payment_method"]
        assert default == mastercard
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        "/portal/payment-methods",
        "Payment methods",
    )
    expect(old).to_have_count(0)
    expect(new.get_by_text("Default", exact=True)).to_be_visible()

    # The default card can go while another one stays: Stripe then has no default card.
    amex = page.locator(f"#card-{ids['third_payment_method']}")
    with stripe_portico.relay.held():
        follow(page, js, new.get_by_role("link", name="Remove", exact=True))
        expect(heading(page, "Remove Mastercard ending in 4444?")).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("This is your default payment method.")
        follow(page, js, button(page, "Remove"))
        flash(page, "Mastercard ending in 4444 was removed.")
        expect(new).to_have_count(0)
        expect(amex).to_be_visible()
        expect(amex.get_by_text("Default", exact=True)).to_have_count(0)
        assert stripe_api.get(mastercard)["customer"] is None
        on_stripe = stripe_api.get(ids["customer"])["invoice_settings"]["default_payment_method"]
        assert on_stripe is None
    after_webhooks(
        page, stripe_portico, ids["customer"], "/portal/payment-methods", "Payment methods"
    )
    expect(page.locator(".pm-list > li")).to_have_count(1)

    # The last card stays while the subscription is active: the page says why, Stripe keeps it.
    follow(page, js, amex.get_by_role("link", name="Remove", exact=True))
    expect(heading(page, re.compile(r"^Remove .* ending in 0005\?$"))).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("You need at least one payment method")
    expect(button(page, "Remove")).to_have_count(0)
    assert stripe_api.get(ids["third_payment_method"])["customer"] == ids["customer"]


def test_edit_billing_details_and_a_vat_id(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    stripe_portico: StripePortico,
) -> None:
    email = journey_email("details", js)
    customer = stripe_world.customers[email]["customer"]
    with stripe_portico.relay.held():
        signed_in(page, js, live_server, mailbox, fresh_email, email)
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
    after_webhooks(
        page,
        stripe_portico,
        stripe_world.customers[email]["customer"],
        "/portal/details",
        "Billing details",
    )
    expect(taxes).to_contain_text("No tax IDs yet.")
    expect(page.get_by_label("City", exact=True)).to_have_value("Berlin")
    expect(page.get_by_label("Shipping city", exact=True)).to_have_value("")
