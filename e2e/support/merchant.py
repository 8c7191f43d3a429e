"""The merchant side of the journeys: the demo merchant's credentials (from ``portico demo``'s
``Merchant sign-in:`` line), one signed-in merchant session shared by the tests, the default
portal configuration put back as it was after every test, and steps that work with JavaScript on
(htmx) and off (plain forms).

Import the fixtures into a test module: ``from e2e.support.merchant import merchant_fixture``
(and ``settings_page_fixture``); they are named ``merchant`` and ``settings_page``.
"""

from __future__ import annotations

import http.client
import io
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from e2e.support.database import PorticoDatabase
from e2e.support.journeys import submit
from e2e.support.server import LiveServer, MerchantSignIn, merchant_sign_in

SIGN_IN_PATH = "/merchant/sign-in"
SETTINGS_URL = re.compile(r"/merchant/configurations/(?P<id>[^/]+)/(?P<page>[a-z-]+)")
HEADER_BACKGROUND = "getComputedStyle(document.querySelector('.site-header')).backgroundColor"


@dataclass(frozen=True)
class Merchant:
    """The demo merchant and the portal configuration the customer login link belongs to."""

    credentials: MerchantSignIn
    configuration_id: str
    cookies: list

    def url(self, page_name: str) -> str:
        """A settings page of the configuration: ``profile``, ``branding``, ``login-link``…"""
        return f"/merchant/configurations/{self.configuration_id}/{page_name}"

    def open(self, page: Page, page_name: str) -> Response:
        """Load a settings page whole, as the signed-in merchant (see ``signed_in``)."""
        response = page.goto(self.url(page_name))
        assert response is not None
        assert response.status == 200, f"{page_name} answered {response.status}"
        expect(page).to_have_url(re.compile(re.escape(self.url(page_name)) + r"(\?.*)?$"))
        return response

    def signed_in(self, context: BrowserContext) -> BrowserContext:
        """Give ``context`` the shared merchant session."""
        context.add_cookies(self.cookies)
        return context


# -- the shared session -------------------------------------------------------------------------
_sessions: dict[str, list] = {}


def sign_in_merchant(page: Page, js: bool, credentials: MerchantSignIn) -> None:
    """The sign-in form, as a merchant fills it; ends on a settings page."""
    page.get_by_label("Email", exact=True).fill(credentials.email)
    page.get_by_label("Password", exact=True).fill(credentials.password)
    response = submit(page, js, "Sign in")
    assert response.status in (200, 303), f"sign-in answered {response.status}"
    page.wait_for_url(SETTINGS_URL)


def session_alive(server: LiveServer, cookies: list) -> bool:
    """Whether ``cookies`` still open the settings (sessions end after 15 idle minutes, or when
    another test signs the merchant out everywhere): ``/merchant`` then answers 303 to a page of
    settings, not to the sign-in page."""
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    connection = http.client.HTTPConnection(urlsplit(server.base_url).netloc, timeout=10)
    try:
        connection.request("GET", "/merchant", headers={"Cookie": header})
        response = connection.getresponse()
        response.read()
        location = response.getheader("location") or ""
    finally:
        connection.close()
    return response.status == 303 and SIGN_IN_PATH not in location


def merchant_cookies(browser: Browser, server: LiveServer, credentials: MerchantSignIn) -> list:
    """Cookies of one merchant session, shared by the tests (merchant sign-in is throttled per
    address): signed in through a JS-off page when there is none yet or it has ended."""
    cached = _sessions.get(server.base_url)
    if cached is None or not session_alive(server, cached):
        context = browser.new_context(java_script_enabled=False, base_url=server.base_url)
        try:
            page = context.new_page()
            page.goto(SIGN_IN_PATH)
            sign_in_merchant(page, False, credentials)
            _sessions[server.base_url] = context.cookies()
        finally:
            context.close()
    return _sessions[server.base_url]


def default_configuration_id(db: PorticoDatabase, server: LiveServer) -> str:
    rows = db.query("SELECT id, login_page_token FROM portal_configuration WHERE is_default = 1")
    assert len(rows) == 1, f"expected one default configuration, found {len(rows)}"
    assert server.login_path == f"/p/login/{rows[0]['login_page_token']}", (
        "the default configuration's login link is not the one the demo printed"
    )
    return rows[0]["id"]


@pytest.fixture(name="merchant")
def merchant_fixture(
    browser: Browser, live_server: LiveServer, portico_db: PorticoDatabase
) -> Iterator[Merchant]:
    """The demo merchant. The default configuration (the login link every journey uses) is put
    back exactly as it was when the test ends, however it ends."""
    credentials = merchant_sign_in(live_server)
    configuration_id = default_configuration_id(portico_db, live_server)
    cookies = merchant_cookies(browser, live_server, credentials)
    saved = portico_db.query("SELECT * FROM portal_configuration WHERE id = ?", configuration_id)
    yield Merchant(credentials, configuration_id, cookies)
    columns = [name for name in saved[0].keys() if name != "id"]  # noqa: SIM118 (sqlite3.Row)
    assignments = ", ".join(f'"{name}" = ?' for name in columns)
    portico_db.execute(
        f"UPDATE portal_configuration SET {assignments} WHERE id = ?",  # noqa: S608
        *(saved[0][name] for name in columns),
        configuration_id,
    )


@pytest.fixture(name="settings_page")
def settings_page_fixture(context: BrowserContext, merchant: Merchant) -> Page:
    """A page (JavaScript on or off, as the test runs) signed in as the merchant."""
    return merchant.signed_in(context).new_page()


# -- steps --------------------------------------------------------------------------------------
def click_and_load(page: Page, button: str) -> Response:
    """Click a button that submits its form the plain way (no htmx, whatever the JS setting)."""
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button, exact=True).click()
    response = navigation.value
    assert response is not None
    return response


def expect_flash(page: Page, message: str) -> None:
    expect(page.locator(".flash-region")).to_contain_text(message)


def png(width: int, height: int, colour: tuple[int, int, int] = (15, 118, 110)) -> bytes:
    """A PNG of one colour, made here (Pillow) for upload."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def noisy_png(width: int, height: int, seed: int = 1) -> bytes:
    """A PNG that hardly compresses: random pixels, about ``3 * width * height`` bytes."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def rgb(hex_colour: str) -> str:
    """``#0f766e`` as getComputedStyle writes it: ``rgb(15, 118, 110)``."""
    value = hex_colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({red}, {green}, {blue})"


def header_background(
    make_context: Callable[..., BrowserContext], path: str, cookies: list | None = None
) -> str:
    """The computed background colour of ``.site-header`` at ``path``, read in a separate
    JavaScript-enabled page (with ``cookies``, for pages behind a sign-in)."""
    checker = make_context(javascript=True)
    try:
        if cookies:
            checker.add_cookies(cookies)
        page = checker.new_page()
        response = page.goto(path)
        assert response is not None
        assert response.status == 200, f"{path} answered {response.status}"
        return page.evaluate(HEADER_BACKGROUND)
    finally:
        checker.close()
