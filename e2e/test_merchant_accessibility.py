"""axe-core on every merchant settings page (JavaScript on): sign-in, every page the settings
navigation links to (enumerated at run time, so new pages are checked as they land) and the
states a page can be in: errors, the branding preview, the prefilled link, the rotate step."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from e2e.support.axe import assert_accessible
from e2e.support.journeys import submit
from e2e.support.merchant import (
    SIGN_IN_PATH,
    Merchant,
    click_and_load,
    merchant_fixture,  # noqa: F401 (the "merchant" fixture)
)


@pytest.mark.parametrize("js", [True], ids=["js-on"])
def test_settings_pages_have_no_accessibility_violations(
    make_context: Callable[..., BrowserContext],
    js: bool,
    merchant: Merchant,
) -> None:
    visitor = make_context(javascript=js).new_page()
    visitor.goto(SIGN_IN_PATH)
    assert_accessible(visitor, "the merchant sign-in page")
    visitor.get_by_label("Email", exact=True).fill(merchant.credentials.email)
    assert submit(visitor, js, "Sign in").status == 422  # no password: nothing is checked
    expect(visitor.get_by_role("alert")).to_contain_text("There is a problem")
    assert_accessible(visitor, "the merchant sign-in page with an error")

    page = merchant.signed_in(make_context(javascript=js)).new_page()
    merchant.open(page, "profile")
    nav = page.get_by_role("navigation", name="Settings")
    pages = {
        link.inner_text().strip(): link.get_attribute("href") or ""
        for link in nav.get_by_role("link").all()
    }
    assert {"Business profile", "Branding", "Login link"} <= set(pages), pages
    for name, href in pages.items():
        response = page.goto(href)
        assert response is not None
        assert response.status == 200, f"{name} ({href}) answered {response.status}"
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        assert_accessible(page, f"the {name} page")

    # The business profile with an error.
    merchant.open(page, "profile")
    page.get_by_label("Business name", exact=True).fill("")
    assert submit(page, js, "Save").status == 422
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    assert_accessible(page, "the business profile with an error")

    # Branding: the live preview (htmx) with colour notes, then the Preview button's page.
    merchant.open(page, "branding")
    with page.expect_response(lambda r: r.url.endswith("/branding/preview")):
        page.get_by_label("Brand colour", exact=True).fill("#ffd60a")  # too light for text
    expect(page.locator("#brand-preview")).to_contain_text("#ffd60a")
    assert_accessible(page, "the branding page with a live preview")
    assert click_and_load(page, "Preview").status == 200
    expect(page.get_by_text("The preview shows your changes")).to_be_visible()
    assert_accessible(page, "the branding preview page")

    # The login link with a prefilled link, and the rotate step.
    merchant.open(page, "login-link")
    page.get_by_label("Email", exact=True).fill("jenny.rosen@example.com")
    expect(page.get_by_label("Prefilled link", exact=True)).to_be_visible()
    assert_accessible(page, "the login link page with a prefilled link")
    merchant.open(page, "login-link/rotate")
    expect(page.get_by_role("heading", name="Rotate the login link?")).to_be_visible()
    assert_accessible(page, "the rotate confirmation")
