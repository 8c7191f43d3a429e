"""The merchant brands the portal: business profile and branding pages, seen by customers on the
login page and in the portal. Each journey with JavaScript on and off; the configuration is put
back as it was after each test (the ``merchant`` fixture)."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, Response, expect

from e2e.support.browser import BrowserGuard
from e2e.support.database import PorticoDatabase
from e2e.support.journeys import open_login, sign_in, submit
from e2e.support.mailbox import Mailbox
from e2e.support.merchant import (
    Merchant,
    click_and_load,
    expect_flash,
    header_background,
    merchant_fixture,  # noqa: F401 (the "merchant" fixture)
    noisy_png,
    png,
    rgb,
    settings_page_fixture,  # noqa: F401 (the "settings_page" fixture)
    sign_in_merchant,
)
from e2e.support.server import LiveServer

JENNY = "jenny.rosen@example.com"
BRAND = "#0f766e"
BUSINESS = "Acme Cloud"
# A wide logo. Both sides must be at least 128 pixels (Stripe's rule for brand images, which
# Portico follows), so the 300 by 120 of a typical wide logo is refused: 320 by 128 keeps its shape.
LOGO_SIZE = (320, 128)
ASSET_URL = re.compile(r"^/p/assets/[0-9a-f]{64}$")


def choose_logo(page: Page, js: bool, data: bytes, name: str = "logo.png") -> None:
    """Pick a file for the Logo field. With htmx the form previews itself on input (without the
    images): wait for that answer, so the next click does not race it."""
    field = page.get_by_label("Logo", exact=True)
    files = {"name": name, "mimeType": "image/png", "buffer": data}
    if not js:
        field.set_input_files(files)
        return
    # htmx must have taken the form on (its trigger listens from then on): the heading can be
    # visible before htmx has processed the page, and a file chosen earlier previews nothing.
    page.wait_for_function(
        """() => {
            const form = document.querySelector('form[hx-post$="/branding/preview"]');
            return Boolean(form && form['htmx-internal-data']?.initHash);
        }"""
    )
    with page.expect_response(lambda r: r.url.endswith("/branding/preview")):
        field.set_input_files(files)


def configuration_logo(db: PorticoDatabase, configuration_id: str) -> str | None:
    rows = db.query("SELECT logo FROM portal_configuration WHERE id = ?", configuration_id)
    return rows[0]["logo"]


def assert_branded_page(page: Page, logo_src: str, headline: str) -> None:
    """The header shows the new logo (loaded, at its size) and the page the new headline."""
    logo = page.locator(".site-header img.brand__logo")
    expect(logo).to_have_attribute("src", logo_src)
    expect(logo).to_have_attribute("alt", BUSINESS)
    expect(page.get_by_role("main").locator(".lead").first).to_have_text(headline)
    # Runs through the DevTools protocol, so it works in the JavaScript-off pages too.
    size = page.evaluate(
        "(img) => img.complete && [img.naturalWidth, img.naturalHeight]", logo.element_handle()
    )
    assert size == list(LOGO_SIZE), f"the logo did not load at its size: {size}"


def test_merchant_brands_the_login_page_and_portal(
    context: BrowserContext,
    js: bool,
    live_server: LiveServer,
    merchant: Merchant,
    make_context: Callable[..., BrowserContext],
    mailbox: Mailbox,
    fresh_email: Callable[[str], int],
    portico_db: PorticoDatabase,
) -> None:
    mode = "js-on" if js else "js-off"
    headline = f"Plans, cards and invoices for Acme Cloud customers ({mode})."
    original_logo = configuration_logo(portico_db, merchant.configuration_id)
    assert header_background(make_context, live_server.login_path) != rgb(BRAND)  # the control

    page = context.new_page()

    # Sign in with the credentials the demo printed.
    page.goto(merchant.credentials.url)
    expect(page.get_by_role("heading", name="Sign in to Portico settings", level=1)).to_be_visible()
    sign_in_merchant(page, js, merchant.credentials)
    expect(page.get_by_role("heading", name="Business profile", level=1)).to_be_visible()

    # The headline, on the business profile page.
    page.get_by_label("Headline", exact=True).fill(headline)
    assert submit(page, js, "Save").status in (200, 303)
    expect_flash(page, "Business profile saved.")
    expect(page.get_by_label("Headline", exact=True)).to_have_value(headline)

    # The logo and brand colour, on the branding page.
    settings_nav = page.get_by_role("navigation", name="Settings")
    settings_nav.get_by_role("link", name="Branding", exact=True).click()
    expect(page.get_by_role("heading", name="Branding", level=1)).to_be_visible()
    choose_logo(page, js, png(*LOGO_SIZE, colour=(200, 30, 90) if js else (30, 90, 200)))
    page.get_by_label("Brand colour", exact=True).fill(BRAND)
    if js:  # the live preview follows the colour
        expect(page.locator("#brand-preview code").first).to_have_text(BRAND)
    assert click_and_load(page, "Save").status == 200
    expect_flash(page, "Branding saved.")
    expect(page.get_by_label("Brand colour", exact=True)).to_have_value(BRAND)
    logo_src = page.get_by_role("img", name="Current logo").get_attribute("src") or ""
    assert ASSET_URL.match(logo_src), logo_src
    assert logo_src != f"/p/assets/{original_logo}", "the logo did not change"

    # A customer (another browser, nothing cached) sees them on the login page …
    customer = make_context(javascript=js).new_page()
    assets: list[Response] = []
    customer.on("response", lambda r: assets.append(r) if "/p/assets/" in r.url else None)
    open_login(customer, live_server, js)
    expect(customer.get_by_role("heading", name=f"Sign in to {BUSINESS}", level=1)).to_be_visible()
    assert_branded_page(customer, logo_src, headline)
    loaded = [r for r in assets if r.url == live_server.base_url + logo_src]
    assert len(loaded) == 1, f"expected one request for the logo {logo_src}, got {loaded}"
    assert loaded[0].status == 200
    assert loaded[0].header_value("content-type") == "image/png"
    assert header_background(make_context, live_server.login_path) == rgb(BRAND)

    # … and in the portal.
    sign_in(customer, live_server, js, mailbox, JENNY, fresh_email(JENNY))
    assert_branded_page(customer, logo_src, headline)
    assert header_background(make_context, "/portal", customer.context.cookies()) == rgb(BRAND)


def refused_uploads() -> list[tuple[str, str, bytes, str]]:
    """(case, file name, content, message beside the field)."""
    return [
        ("a text file", "logo.png", b"This is a text file, not a picture.\n" * 20,
         "The logo must be a PNG, JPEG or WebP image."),
        ("a 64 by 64 PNG", "logo.png", png(64, 64),
         "The logo must be at least 128 by 128 pixels (this one is 64 by 64)."),
        ("a PNG over 512 KB", "logo.png", noisy_png(450, 450),
         "The logo file is {kb} KB: it must be 512 KB or smaller."),
    ]  # fmt: skip


def test_refused_uploads_say_why_beside_the_field(
    settings_page: Page,
    js: bool,
    merchant: Merchant,
    portico_db: PorticoDatabase,
    guard: BrowserGuard,
) -> None:
    page = settings_page
    original_logo = configuration_logo(portico_db, merchant.configuration_id)
    merchant.open(page, "branding")
    for case, name, data, text in refused_uploads():
        message = text.format(kb=round(len(data) / 1024))
        choose_logo(page, js, data, name)
        response = click_and_load(page, "Save")
        assert response.status == 422, f"{case}: answered {response.status}"
        expect(page).to_have_title(re.compile(r"^Error: Branding"))
        field = page.get_by_label("Logo", exact=True)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile(re.escape(message)))
        expect(page.locator(".field--error").filter(has=field)).to_contain_text(message)
        summary = page.get_by_role("alert")
        expect(summary).to_contain_text("There is a problem")
        expect(summary.get_by_role("link", name=message)).to_have_attribute("href", "#logo")
        assert configuration_logo(portico_db, merchant.configuration_id) == original_logo, case
    assert not guard.problems()


def test_a_logo_over_one_megabyte_is_refused_beside_the_field(
    settings_page: Page,
    js: bool,
    merchant: Merchant,
    guard: BrowserGuard,
) -> None:
    guard.allow_status(413)
    page = settings_page
    merchant.open(page, "branding")
    data = noisy_png(850, 850)  # about 2 MB
    assert len(data) > 2 * 1024 * 1024 - 100_000
    choose_logo(page, js, data)
    response = click_and_load(page, "Save")
    assert response.status == 422, f"answered {response.status}: {page.title()}"
    message = f"The logo file is {round(len(data) / 1024)} KB: it must be 512 KB or smaller."
    expect(page.get_by_label("Logo", exact=True)).to_have_accessible_description(
        re.compile(re.escape(message))
    )
