"""Sign-in in Stripe mode, with JavaScript on and off: a customer only Stripe has is found
(``customers.list(email=…)``, asked by the mail worker after the page answered) and mirrored
before the overview renders; among Stripe customers sharing an email, the one with a plan signs
in; an email Stripe does not know gets the same page and no mail. Webhooks are held meanwhile, so
the customers reach the mirror through sign-in alone."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.support.database import PorticoDatabase
from e2e.support.journeys import open_login, request_code
from e2e.support.mailbox import Mailbox
from e2e.support.portal import pace_code_requests
from e2e.support.server import LiveServer
from e2e.support.stripe_journeys import (
    CODES_PER_MINUTE,
    Fresh,
    StripeJourney,
)
from e2e.support.stripe_world import StripeWorld, journey_email, seed_customer
from tests.stripe_api import StripeAPIServer


def mirrored(portico_db: PorticoDatabase, email: str) -> list[str]:
    """The ids of the customers with ``email`` in Portico's mirror."""
    rows = portico_db.query("SELECT id FROM billing_customer WHERE email = ?", email)
    return [row["id"] for row in rows]


def test_sign_in_finds_a_customer_only_stripe_has(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    portico_db: PorticoDatabase,
) -> None:
    email = journey_email("nia.new", js)
    # Webhooks held: the new customer's events would otherwise bring it into the mirror before
    # the sign-in has to ask Stripe for it.
    with journey.webhooks_held():
        ids = seed_customer(
            stripe_api,
            stripe_world,
            email,
            "Nia New",
            plan="business",
            quantity=1,
            open_invoice=False,
        )
        assert mirrored(portico_db, email) == []
        first_invoice = stripe_api.get(stripe_api.get(ids["subscription"])["latest_invoice"])

        journey.sign_in_as(email)

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
        assert mirrored(portico_db, email) == [ids["customer"]]
    journey.assert_mirror_agrees(ids["customer"])


def test_shared_email_signs_in_as_the_stripe_customer_with_a_plan(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    portico_db: PorticoDatabase,
) -> None:
    email = journey_email("sam.shared", js)
    with journey.webhooks_held():
        older = seed_customer(
            stripe_api, stripe_world, email, "Sam Older", plan="team", open_invoice=False
        )
        newer = stripe_api.create_customer(email=email, name="Sam Newer")
        assert mirrored(portico_db, email) == []

        journey.sign_in_as(email)

        main = page.get_by_role("main")
        expect(main.get_by_text("Sam Older", exact=True)).to_be_visible()
        expect(main).not_to_contain_text("Sam Newer")
        assert sorted(mirrored(portico_db, email)) == sorted([older["customer"], newer["id"]])
    journey.assert_mirror_agrees(older["customer"])


def test_an_email_stripe_does_not_know_gets_nothing(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_api: StripeAPIServer,
    portico_db: PorticoDatabase,
) -> None:
    nobody = journey_email("nobody", js)
    before = fresh_email(nobody)
    pace_code_requests(CODES_PER_MINUTE)
    open_login(page, live_server, js)
    response = request_code(page, js, nobody)  # "Check your email", as for a customer
    assert response.status == 200

    portico_db.wait_for_no_pending_mail(nobody)
    assert portico_db.outbox_statuses(nobody)[-1] == "skipped"
    assert mailbox.count(nobody) == before
    asked = [r for r in stripe_api.requests if r.method == "GET" and r.path == "/v1/customers"]
    assert any(r.params.get("email") == nobody for r in asked), "Stripe was not asked"
