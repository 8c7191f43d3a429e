"""Steps and checks shared by the Stripe-mode journeys (``e2e/stripe``).

``StripeJourney`` (the ``journey`` fixture) holds one test's page and customer and takes the
steps every journey takes: signing in, paced under the Stripe-mode server's own per-IP passcode
budget; holding webhooks; pressing a button onto the next page; ``assert_mirror_agrees``, which
waits for Stripe's webhooks and compares Portico's mirror with the test server
(``e2e.support.stripe_mirror``), and ``after_webhooks``, which does that and loads a page again.
``open_section`` follows the portal's menu; ``flash`` reads the flash region. The rest reads
Stripe's side: the updates a subscription received, a discount's coupon, a customer's invoices,
and an amount shown on a page in cents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Locator, Page, expect

from e2e.support.database import PorticoDatabase
from e2e.support.mailbox import Mailbox
from e2e.support.portal import button, follow, heading, link, open_page, sign_in_to_portal
from e2e.support.server import LiveServer
from e2e.support.stripe_mirror import mirror_differences
from e2e.support.stripe_portico import StripePortico
from e2e.support.stripe_world import StripeWorld, journey_email
from tests.stripe_api import StripeAPIServer
from tests.stripe_api.app import RecordedRequest

Fresh = Callable[[str], int]
CODES_PER_MINUTE = 25
TIMES = "\u00d7"  # the multiplication sign between a plan and its quantity
SUBSCRIPTIONS = "/portal/subscriptions"


def open_section(page: Page, name: str, heading: str | None = None) -> None:
    """Follow a link of the portal's menu."""
    page.get_by_role("navigation", name="Account").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=heading or name, level=1)).to_be_visible()


def flash(page: Page, text: str) -> None:
    expect(page.locator(".flash-region")).to_contain_text(text)


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


def coupon_of(discount: dict[str, Any]) -> str:
    """A discount's coupon id (``source.coupon`` in current API versions)."""
    coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
    return coupon["id"] if isinstance(coupon, dict) else coupon


def cents(text: str) -> int:
    """The first dollar amount in a text, in cents ("$1,234.50 on …" → 123450)."""
    found = re.search(r"\$([\d,]+)\.(\d\d)", text)
    assert found, f"no amount in {text!r}"
    return int(found[1].replace(",", "")) * 100 + int(found[2])


def double_click(page: Page, js: bool, target: Locator) -> None:
    """Click a submit button twice in quick succession, as an impatient customer does."""
    if js:
        target.dblclick()
        return
    with page.expect_navigation():
        target.dblclick()


def invoices_of(stripe_api: StripeAPIServer, customer: str) -> list[dict[str, Any]]:
    return stripe_api.call("GET", "/v1/invoices", customer=customer, limit=100)["data"]


@dataclass
class StripeJourney:
    """One test's journey, with JavaScript on or off (``js``), on the seeded customer of its own
    that ``sign_in`` signs in as (``ids``: the customer's Stripe ids)."""

    page: Page
    js: bool
    server: LiveServer
    mailbox: Mailbox
    fresh: Fresh
    world: StripeWorld
    stripe_portico: StripePortico
    ids: dict[str, Any] = field(default_factory=dict)

    def sign_in(self, name: str) -> dict[str, Any]:
        """Sign in as the customer seeded for journey ``name``; its ids."""
        email = journey_email(name, self.js)
        self.ids = self.world.customers[email]
        self.sign_in_as(email)
        return self.ids

    def sign_in_as(self, email: str) -> None:
        """Sign in with ``email`` through the login link (as a customer the test seeded on Stripe
        itself). Passcode requests are paced under the server's per-IP limit (30 a minute); the
        Stripe-mode server is a process of its own that only these journeys sign in to, so they
        may use most of it."""
        sign_in_to_portal(
            self.page,
            self.server,
            self.js,
            self.mailbox,
            self.fresh,
            email,
            codes_per_minute=CODES_PER_MINUTE,
        )

    def webhooks_held(self) -> AbstractContextManager[None]:
        """Stripe's webhooks wait meanwhile (the checks see Portico's own doing)."""
        return self.stripe_portico.relay.held()

    def open_subscription(self) -> Locator:
        """The subscriptions page, opened the ``js`` way; the customer's subscription card."""
        open_page(self.page, self.js, SUBSCRIPTIONS, "Subscriptions")
        return self.page.locator(f"#sub-{self.ids['subscription']}")

    def press(self, scope: Page | Locator, name: str, then: str | None = None) -> None:
        """Press the button ``name`` in ``scope`` (a submit button, or a link that looks like one:
        the subscription card's actions); the page it leads to has the heading ``then`` (the
        button's name by default)."""
        follow(self.page, self.js, button(scope, name).or_(link(scope, name)))
        expect(heading(self.page, then or name)).to_be_visible()

    def assert_mirror_agrees(self, customer: str | None = None) -> None:
        """Once Stripe's webhooks for the journey's changes reached Portico (which re-fetches the
        objects they name), the mirror agrees with Stripe on the customer's objects (``ids``'s
        customer by default)."""
        relay = self.stripe_portico.relay
        relay.flush()
        db = PorticoDatabase(self.stripe_portico.server.db_path)
        differences = mirror_differences(db, relay.stripe_api, customer or self.ids["customer"])
        assert not differences, "the mirror differs from Stripe:\n" + "\n".join(differences)

    def after_webhooks(self, path: str = SUBSCRIPTIONS, title: str = "Subscriptions") -> None:
        """``assert_mirror_agrees``, then load the page again (the caller checks it still shows
        the change)."""
        self.assert_mirror_agrees()
        self.page.goto(path)
        expect(heading(self.page, title)).to_be_visible()
