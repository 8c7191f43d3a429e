"""Steps and checks shared by the Stripe-mode journeys (``e2e/stripe``).

Signing in is paced under the Stripe-mode server's own per-IP passcode budget; ``flash`` reads
the flash region; ``assert_mirror_agrees`` waits for Stripe's webhooks and compares Portico's
mirror with the test server (``e2e.support.stripe_mirror``); ``after_webhooks`` does that and
loads a page again. The rest reads Stripe's side: the updates a subscription received, a
discount's coupon, a customer's invoices, and an amount shown on a page in cents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, expect

from e2e.support.database import PorticoDatabase
from e2e.support.mailbox import Mailbox
from e2e.support.portal import heading, sign_in_to_portal
from e2e.support.server import LiveServer
from e2e.support.stripe_mirror import mirror_differences
from e2e.support.stripe_portico import StripePortico
from tests.stripe_api import StripeAPIServer
from tests.stripe_api.app import RecordedRequest

Fresh = Callable[[str], int]
CODES_PER_MINUTE = 25
TIMES = "\u00d7"  # the multiplication sign between a plan and its quantity
SUBSCRIPTIONS = "/portal/subscriptions"


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
