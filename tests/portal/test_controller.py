"""Signed-in portal pages: access, expiry, sign-out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.audit.tables import AuditEvent
from app.billing.tables import Customer
from app.configuration.tables import PortalConfiguration
from app.login.tables import WebSession
from tests.helpers import HX, JENNY, SAM, without_html

BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])


def _headers(htmx: bool) -> dict[str, str]:
    return HX if htmx else {}


def _cookie_is_cleared(response) -> bool:
    cookie = response.headers.get("set-cookie", "")
    return cookie.startswith("portico_session=") and (
        "max-age=0" in cookie.lower() or "expires=thu, 01 jan 1970" in cookie.lower()
    )


@BOTH
async def test_signed_out_visitors_get_the_signed_out_page(portal, htmx):
    response = await portal.client.get("/portal", headers=_headers(htmx))
    assert response.status_code == 401
    assert "<html" in response.text
    assert "You are signed out" in response.text
    assert portal.login_path not in response.text  # the link is not revealed
    bogus = await portal.client.get(
        "/portal", headers={**_headers(htmx), "Cookie": "portico_session=made-up"}
    )
    assert bogus.status_code == 401
    signed_out = await portal.client.get("/signed-out")
    assert signed_out.status_code == 401
    assert "You are signed out" in signed_out.text


@BOTH
async def test_the_overview(demo_portal, htmx):
    await demo_portal.sign_in(JENNY)
    response = await demo_portal.client.get("/portal", headers=_headers(htmx))
    assert response.status_code == 200
    assert "Billing overview" in response.text
    assert "Jenny Rosen" in response.text
    assert JENNY in response.text
    assert "Team" in response.text  # her plan
    assert response.headers["cache-control"] == "no-store"
    assert "HX-Request" in response.headers["vary"]
    if htmx:
        assert without_html(response.text)
    else:
        assert "<html" in response.text
        assert "Sign out" in response.text


async def test_a_shared_email_opens_the_customer_with_an_active_subscription(portal):
    await portal.sign_in(SAM)
    response = await portal.client.get("/portal")
    assert response.status_code == 200
    assert "Sam Older" in response.text
    assert "Sam Newer" not in response.text


@BOTH
async def test_an_idle_session_ends_with_a_message(portal, htmx, fake_clock):
    cookie = await portal.sign_in(JENNY)
    fake_clock.advance(minutes=29)
    assert (await portal.client.get("/portal")).status_code == 200
    fake_clock.advance(minutes=30)

    response = await portal.client.get("/portal", headers=_headers(htmx))
    target = f"{portal.login_path}?reason=expired"
    if htmx:
        assert response.status_code == 200
        assert response.headers["hx-redirect"] == target
    else:
        assert response.status_code == 303
        assert response.headers["location"] == target
    assert _cookie_is_cleared(response)
    assert await WebSession.count() == 0

    page = await portal.client.get(target)
    assert page.status_code == 200
    assert "Your session has ended because it was inactive" in page.text
    again = await portal.client.get("/portal", headers={"Cookie": f"portico_session={cookie}"})
    assert again.status_code == 401


async def test_a_session_ends_after_twelve_hours_however_busy(portal, fake_clock):
    await portal.sign_in(JENNY)
    start = fake_clock()
    # Busy all day (the session was used a minute ago, every time we look)...
    fake_clock.advance(hours=11, minutes=59)
    await WebSession.update({WebSession.last_seen_at: fake_clock.advance(minutes=-1)}).where(
        WebSession.kind == "customer"
    )
    fake_clock.advance(minutes=1)
    assert (await portal.client.get("/portal")).status_code == 200
    # ...and still over 12 hours after signing in.
    fake_clock.set(start + timedelta(hours=12))
    response = await portal.client.get("/portal")
    assert response.status_code == 303
    assert response.headers["location"].endswith("?reason=expired")


@BOTH
async def test_sign_out(portal, htmx):
    cookie = await portal.sign_in(JENNY)
    response = await portal.post("/portal/sign-out", htmx=htmx)
    target = f"{portal.login_path}?reason=signed_out"
    if htmx:
        assert response.status_code == 200
        assert response.headers["hx-redirect"] == target
    else:
        assert response.status_code == 303
        assert response.headers["location"] == target
    assert _cookie_is_cleared(response)
    assert await WebSession.count() == 0
    old = await portal.client.get("/portal", headers={"Cookie": f"portico_session={cookie}"})
    assert old.status_code == 401
    page = await portal.client.get(target)
    assert "You have signed out." in page.text
    actions = [row["action"] for row in await AuditEvent.select(AuditEvent.action)]
    assert sorted(actions) == ["customer.signed_in", "customer.signed_out"]


async def test_sign_out_when_the_login_link_is_off(portal):
    await portal.sign_in(JENNY)
    await PortalConfiguration.update({PortalConfiguration.login_page_enabled: False}).where(
        PortalConfiguration.active.eq(True)
    )
    response = await portal.post("/portal/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/signed-out"
    assert await WebSession.count() == 0


async def test_a_deleted_customer_is_signed_out(portal):
    await portal.sign_in(JENNY)
    await Customer.update({Customer.deleted: True}).where(Customer.email == JENNY)
    response = await portal.client.get("/portal")
    assert response.status_code == 303
    assert response.headers["location"].endswith("?reason=signed_out")
    assert await WebSession.count() == 0


async def test_a_switched_off_portal_signs_everyone_out(portal):
    await portal.sign_in(JENNY)
    await PortalConfiguration.update({PortalConfiguration.active: False}).where(
        PortalConfiguration.active.eq(True)
    )
    response = await portal.client.get("/portal")
    assert response.status_code == 401
    assert await WebSession.count() == 0


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
async def test_portal_pages_say_when_billing_is_unreachable(portal, htmx, monkeypatch):
    # The Stripe gateway marks billing degraded when Stripe does not answer
    # (app.billing.health); every portal page then says so in its status region.
    from app.billing import health

    await portal.sign_in(JENNY)
    quiet = await portal.client.get("/portal", headers=_headers(htmx))
    assert "temporarily unreachable" not in quiet.text
    monkeypatch.setattr(
        health, "billing_notice", lambda request: "Billing is temporarily unreachable."
    )
    for url in ("/portal", "/portal/subscriptions", "/portal/invoices"):
        response = await portal.client.get(url, headers=_headers(htmx))
        assert response.status_code == 200, url
        assert 'role="status"' in response.text
        assert "Billing is temporarily unreachable." in response.text, url
