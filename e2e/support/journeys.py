"""Steps shared by the sign-in journeys. Each works with JavaScript on (htmx fragment swaps) and
off (plain form posts and full page loads)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Response, expect

from e2e.support.browser import HTMX_VERSION, htmx_version, mark_document, same_document
from e2e.support.mailbox import Mailbox
from e2e.support.server import LiveServer

PORTAL_URL = re.compile(r"/portal/?$")
CODE_URL = re.compile(r"/p/login/[^/]+/code/[^/?]+")


def page_title(text: str) -> re.Pattern[str]:
    """A document title: the page's own, an en dash, then the business name."""
    return re.compile("^" + re.escape(text) + " \u2013 ")


def open_login(page: Page, server: LiveServer, js: bool, query: str = "") -> Response:
    response = page.goto(server.login_url + query)
    assert response is not None
    assert response.status == 200, f"login page answered {response.status}"
    if js:
        assert htmx_version(page) == HTMX_VERSION, "htmx did not load from the routed CDN URL"
    return response


def submit(page: Page, js: bool, button: str) -> Response:
    """Click a form's button. JS on: htmx posts it and the answer is the htmx response; JS off:
    the browser posts it and the answer is the final page (after any 303)."""
    clickable = page.get_by_role("button", name=button, exact=True)
    if js:
        # htmx takes the page's forms on at DOMContentLoaded: a click before the page has loaded
        # would be a plain browser POST, and no htmx answer would come.
        page.wait_for_load_state()
        mark_document(page)
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.request.headers.get("hx-request") == "true"
        ) as answer:
            clickable.click()
        return answer.value
    with page.expect_navigation() as navigation:
        clickable.click()
    response = navigation.value
    assert response is not None
    return response


def assert_fragment_swap(page: Page, js: bool) -> None:
    """With JS on, the last step replaced part of the page instead of loading a new one."""
    if js:
        assert same_document(page), "expected an htmx fragment swap, got a full page load"


def request_code(page: Page, js: bool, email: str) -> Response:
    """On the login page: type the email, continue, arrive at "Check your email"."""
    page.get_by_label("Email").fill(email)
    response = submit(page, js, "Continue")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_label("Passcode")).to_be_visible()
    assert_fragment_swap(page, js)
    expect(page).to_have_url(CODE_URL)  # pushed by htmx, or the 303's target
    expect(page).to_have_title(page_title("Check your email"))
    return response


def enter_code(page: Page, js: bool, code: str) -> Response:
    page.get_by_label("Passcode").fill(code)
    return submit(page, js, "Sign in")


def sign_in(
    page: Page, server: LiveServer, js: bool, mailbox: Mailbox, email: str, since: int
) -> None:
    """The whole journey: login link → email → code from the SMTP server → portal overview."""
    open_login(page, server, js)
    request_code(page, js, email)
    code = mailbox.wait_for_code(email, since=since)
    enter_code(page, js, code)
    page.wait_for_url(PORTAL_URL)
    expect(page.get_by_role("heading", name="Billing overview", level=1)).to_be_visible()


def session_cookie(page: Page) -> dict:
    cookies = [c for c in page.context.cookies() if c["name"] == "portico_session"]
    assert len(cookies) == 1, f"expected one session cookie, got {cookies}"
    return dict(cookies[0])


def csrf_token(page: Page) -> str:
    return page.locator("input[name=_csrf_token]").first.input_value()
