"""The login link settings page: rotate, turn off and on, and the prefilled-link builder. Each
journey with JavaScript on and off. The ``merchant`` fixture puts the configuration (token and
on/off state included) back as it was, so the other journeys' login link keeps working."""

from __future__ import annotations

import re
from urllib.parse import unquote

from playwright.sync_api import Page, expect

from e2e.support.browser import BrowserGuard, htmx_version
from e2e.support.journeys import assert_fragment_swap, open_login, submit
from e2e.support.merchant import (
    Merchant,
    expect_flash,
    merchant_fixture,  # noqa: F401 (the "merchant" fixture)
    settings_page_fixture,  # noqa: F401 (the "settings_page" fixture)
)
from e2e.support.server import LiveServer

LOGIN_URL = re.compile(r"^http://127\.0\.0\.1:\d+/p/login/[A-Za-z0-9_-]{20,}$")


def shown_login_link(page: Page) -> str:
    field = page.get_by_label("Login link", exact=True)
    expect(field).to_have_attribute("readonly", "")
    return field.input_value()


def status_of(page: Page, url: str) -> int:
    """What a customer's browser gets for ``url`` (a whole page load in this context)."""
    response = page.context.new_page().goto(url)
    assert response is not None
    return response.status


def test_rotating_the_link_retires_the_old_one(
    settings_page: Page,
    js: bool,
    merchant: Merchant,
    live_server: LiveServer,
    guard: BrowserGuard,
) -> None:
    guard.allow_status(404)  # the retired link
    page = settings_page
    merchant.open(page, "login-link")
    old = shown_login_link(page)
    assert old == live_server.login_url

    # The first button only asks: a confirmation page, nothing changed yet.
    page.get_by_role("link", name="Rotate link", exact=True).click()
    expect(page.get_by_role("heading", name="Rotate the login link?", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login-link/rotate$"))  # a link: no trailing "?"
    expect(page.get_by_role("main")).to_contain_text(old)
    assert status_of(page, old) == 200
    expect(page.get_by_role("link", name="Keep the current link")).to_have_attribute(
        "href", merchant.url("login-link")
    )

    submit(page, js, "Rotate link")
    expect_flash(page, "The login link was replaced. The old link no longer works.")
    expect(page.get_by_role("heading", name="Login link", level=1)).to_be_visible()
    assert_fragment_swap(page, js)
    new = shown_login_link(page)
    assert LOGIN_URL.match(new), new
    assert new != old

    assert status_of(page, old) == 404
    customer = page.context.new_page()
    response = customer.goto(new + "?prefilled_email=jenny.rosen%40example.com")
    assert response is not None
    assert response.status == 200
    expect(customer.get_by_role("heading", name="Sign in to Acme Cloud", level=1)).to_be_visible()
    expect(customer.get_by_label("Email")).to_have_value("jenny.rosen@example.com")


def test_deactivated_link_answers_not_found_until_activated(
    settings_page: Page,
    js: bool,
    merchant: Merchant,
    live_server: LiveServer,
    guard: BrowserGuard,
) -> None:
    guard.allow_status(404)
    page = settings_page
    merchant.open(page, "login-link")
    link = shown_login_link(page)
    expect(page.get_by_role("main")).to_contain_text("Customers can sign in with this link.")
    assert status_of(page, link) == 200

    submit(page, js, "Deactivate link")
    expect_flash(page, "The login link is off")
    assert_fragment_swap(page, js)
    expect(page.get_by_role("button", name="Activate link", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Deactivate link", exact=True)).to_have_count(0)
    assert shown_login_link(page) == link  # off, not replaced
    customer = page.context.new_page()
    response = customer.goto(link)
    assert response is not None
    assert response.status == 404
    expect(customer.get_by_label("Email")).to_have_count(0)

    submit(page, js, "Activate link")
    expect_flash(page, "The login link is on: customers can use it to sign in.")
    assert_fragment_swap(page, js)
    expect(page.get_by_role("button", name="Deactivate link", exact=True)).to_be_visible()
    open_login(customer, live_server, js)
    expect(customer.get_by_label("Email")).to_be_visible()


def test_prefill_builder_encodes_the_email(
    settings_page: Page,
    js: bool,
    merchant: Merchant,
    live_server: LiveServer,
) -> None:
    typed = "Jenny.Rosen+VIP@Example.COM"
    page = settings_page
    merchant.open(page, "login-link")
    if js:
        assert htmx_version(page) is not None
    page.get_by_label("Email", exact=True).fill(typed)
    if js:  # the link appears as you type (htmx), no button needed
        expect(page.get_by_label("Prefilled link", exact=True)).to_be_visible()
    else:
        with page.expect_navigation():
            page.get_by_role("button", name="Show link", exact=True).click()
        expect(page).to_have_url(re.compile(r"/login-link/prefill\?email=Jenny\.Rosen%2BVIP"))
        expect(page.get_by_label("Email", exact=True)).to_have_value(typed)
    link = page.get_by_label("Prefilled link", exact=True).input_value()

    base, _, query = link.partition("?")
    assert base == live_server.login_url
    name, _, value = query.partition("=")
    assert name == "prefilled_email"
    assert "+" not in value, f"not percent-encoded: {value}"
    assert "@" not in value, f"not percent-encoded: {value}"
    assert "%2B" in value, value
    assert "%40" in value, value
    # The builder stores the address lower-cased (emails are matched case-insensitively).
    assert unquote(value).lower() == typed.lower()

    customer = page.context.new_page()
    open_login(customer, live_server, js, "?" + query)
    field = customer.get_by_label("Email")
    expect(field).to_have_value(re.compile("^" + re.escape(typed) + "$", re.IGNORECASE))
    expect(field).to_be_editable()
