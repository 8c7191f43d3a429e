"""Sign-in in Stripe mode, with JavaScript on and off: a customer only Stripe has is found
(``customers.list(email=…)``) and mirrored before the overview renders."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.support.database import PorticoDatabase
from e2e.support.mailbox import Mailbox
from e2e.support.server import LiveServer
from e2e.support.stripe_journeys import (
    Fresh,
    assert_mirror_agrees,
    signed_in,
)
from e2e.support.stripe_portico import StripePortico
from e2e.support.stripe_world import StripeWorld, seed_customer
from tests.stripe_api import StripeAPIServer


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
