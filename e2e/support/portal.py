"""Steps shared by the portal journeys (signed in, JavaScript on or off).

With JavaScript on, portal links and forms are htmx requests that swap ``#main-content`` (a
success answers with ``HX-Location``, which htmx follows with a GET of the next page); with it off
they are plain links and form posts followed by full page loads (a success is a 303). The helpers
click, then wait for what the next page shows, so one journey reads the same in both modes; a
JS-on journey checks at its end that it never left the document it started in.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable

from playwright.sync_api import Locator, Page, Request, Response, expect

from e2e.support.browser import mark_document, same_document
from e2e.support.journeys import sign_in
from e2e.support.mailbox import Mailbox
from e2e.support.server import LiveServer

# The server lets one address ask for 30 passcodes a minute, and every test signs in from
# 127.0.0.1. The portal journeys run before the sign-in journeys (file order), so they keep to
# fewer than half of that, leaving the rest of any minute to whatever runs next.
CODE_REQUESTS_PER_MINUTE = 12
_code_requests: deque[float] = deque()


def pace_code_requests(limit: int = CODE_REQUESTS_PER_MINUTE, window: float = 60.0) -> None:
    """Wait, if need be, until fewer than ``limit`` passcodes were asked for in ``window`` s."""
    while True:
        now = time.monotonic()
        while _code_requests and _code_requests[0] <= now - window:
            _code_requests.popleft()
        if len(_code_requests) < limit:
            _code_requests.append(now)
            return
        time.sleep(_code_requests[0] + window - now + 0.05)


def sign_in_to_portal(
    page: Page,
    server: LiveServer,
    js: bool,
    mailbox: Mailbox,
    fresh_email: Callable[[str], int],
    email: str,
    *,
    codes_per_minute: int = CODE_REQUESTS_PER_MINUTE,
) -> None:
    """The real login link, a passcode from the SMTP server, and the overview (passcode requests
    paced to ``codes_per_minute``)."""
    since = fresh_email(email)
    pace_code_requests(codes_per_minute)
    sign_in(page, server, js, mailbox, email, since)


def open_page(page: Page, js: bool, path: str, heading: str | re.Pattern[str]) -> Response:
    """Load a portal page whole (as from the address bar); with JS on, tag the document so the
    journey can check later that every step after this was an htmx swap."""
    response = page.goto(path)
    assert response is not None
    assert response.status == 200, f"{path} answered {response.status}"
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    if js:
        mark_document(page)
    return response


def follow(page: Page, js: bool, target: Locator) -> None:
    """Click a link or submit button. JS off: wait for the page load it causes (after any 303).
    JS on: htmx handles it; the caller waits for what the swapped-in content shows."""
    if js:
        target.click()
        return
    with page.expect_navigation():
        target.click()


def follow_to_new_content(page: Page, js: bool, target: Locator) -> None:
    """Like ``follow``, for a step whose answer may look like what is shown already (the same
    page with the same flash, after saving a form twice): with JS on, also wait until htmx has
    replaced the main content, so the next step does not act on the old one."""
    if not js:
        follow(page, js, target)
        return
    page.locator("#main-content").evaluate(
        "main => { for (const child of main.children) child.dataset.replaced = 'no' }"
    )
    target.click()
    expect(page.locator("#main-content [data-replaced]")).to_have_count(0)


def button(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_role("button", name=name, exact=True)


def link(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_role("link", name=name, exact=True)


def heading(page: Page, name: str | re.Pattern[str]) -> Locator:
    return page.get_by_role("heading", name=name, level=1)


def flash(page: Page) -> Locator:
    """The flash messages' ``role="status"`` region."""
    return page.get_by_role("status")


def assert_stayed_in_document(page: Page, js: bool) -> None:
    """JS on: every step since ``open_page`` swapped part of the page, none loaded a new one."""
    if js:
        assert same_document(page), "expected htmx swaps only, got a full page load"


class PostCounter:
    """Counts the form posts (htmx or plain) the page sends to the server."""

    def __init__(self, page: Page) -> None:
        self.posts: list[str] = []
        page.on("request", self._on_request)

    def _on_request(self, request: Request) -> None:
        if request.method == "POST" and request.resource_type in ("document", "xhr", "fetch"):
            self.posts.append(request.url)

    def reset(self) -> None:
        self.posts.clear()

    @property
    def count(self) -> int:
        return len(self.posts)


def expect_focus_after_swap(js: bool, target: Locator) -> None:
    """JS on: the swapped-in content put focus on its heading or first field (``autofocus``), so
    keyboard and screen reader users start where the new content does. JS off: a full page load
    starts at the top, nothing to check."""
    if js:
        expect(target).to_be_focused()
