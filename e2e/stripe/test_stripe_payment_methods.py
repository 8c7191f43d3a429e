"""Payment method journeys in Stripe mode, with JavaScript on and off: a card added through
Stripe Checkout (after leaving it once with Cancel), another card made the default, cards
detached (the default one too) and the last card kept while a subscription is active."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.support.browser import BrowserGuard
from e2e.support.portal import (
    assert_stayed_in_document,
    button,
    follow,
    heading,
    open_page,
)
from e2e.support.stripe_journeys import (
    StripeJourney,
    flash,
    open_section,
)
from tests.stripe_api import StripeAPIServer


def test_add_a_card_through_checkout(
    page: Page,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
) -> None:
    with journey.webhooks_held():
        customer = journey.sign_in("card")["customer"]
        open_section(page, "Payment methods")
        expect(page.get_by_role("main")).to_contain_text("Mastercard ending in 4444")

        checkout = re.compile(re.escape(stripe_api.url) + r"/c/pay/cs_")
        payment_methods = re.compile(
            re.escape(journey.server.base_url) + r"/portal/payment-methods/?$"
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
    journey.assert_mirror_agrees()


def test_make_another_card_default_and_remove_the_old_one(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
) -> None:
    with journey.webhooks_held():
        ids = journey.sign_in("cards")
        visa, mastercard = ids["payment_method"], ids["second_payment_method"]
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
    journey.after_webhooks("/portal/payment-methods", "Payment methods")
    expect(old).to_have_count(0)
    expect(new.get_by_text("Default", exact=True)).to_be_visible()

    # The default card can go while another one stays: Stripe then has no default card.
    amex = page.locator(f"#card-{ids['third_payment_method']}")
    with journey.webhooks_held():
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
    journey.after_webhooks("/portal/payment-methods", "Payment methods")
    expect(page.locator(".pm-list > li")).to_have_count(1)

    # The last card stays while the subscription is active: the page says why, Stripe keeps it.
    follow(page, js, amex.get_by_role("link", name="Remove", exact=True))
    expect(heading(page, re.compile(r"^Remove .* ending in 0005\?$"))).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("You need at least one payment method")
    expect(button(page, "Remove")).to_have_count(0)
    assert stripe_api.get(ids["third_payment_method"])["customer"] == ids["customer"]


def test_a_stripe_error_is_a_clear_message_and_trying_again_works(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    guard: BrowserGuard,
) -> None:
    guard.allow_status(502)  # Portico's answer while Stripe fails
    ids = journey.sign_in("faults")
    visa, mastercard = ids["payment_method"], ids["second_payment_method"]
    customer_path = f"/v1/customers/{ids['customer']}"
    with journey.webhooks_held():
        open_page(page, js, "/portal/payment-methods", "Payment methods")
        old, new = page.locator(f"#card-{visa}"), page.locator(f"#card-{mastercard}")

        # Stripe fails the update, and the SDK's two retries too.
        stripe_api.inject_fault(customer_path, status=500, times=3, method="POST")
        try:
            follow(page, js, button(new, "Make default"))
            expect(new.locator(".field__error")).to_contain_text("Nothing was changed.")
        finally:
            stripe_api.clear_faults()
        expect(heading(page, "Payment methods")).to_be_visible()
        expect(page.get_by_role("navigation", name="Account")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        expect(old.get_by_text("Default", exact=True)).to_be_visible()
        expect(new.get_by_text("Default", exact=True)).to_have_count(0)
        default = stripe_api.get(ids["customer"])["invoice_settings"]["default_payment_method"]
        assert default == visa

        follow(page, js, button(new, "Make default"))
        flash(page, "Mastercard ending in 4444 is now your default payment method.")
        expect(new.get_by_text("Default", exact=True)).to_be_visible()
        assert_stayed_in_document(page, js)
        default = stripe_api.get(ids["customer"])["invoice_settings"]["default_payment_method"]
        assert default == mastercard
        updates = [
            r
            for r in stripe_api.requests
            if r.method == "POST" and r.path == customer_path and r.status == 200
        ]
        assert len(updates) == 1, [r.params for r in updates]
    journey.assert_mirror_agrees()
