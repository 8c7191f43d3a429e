"""Customer sign-in with an emailed passcode, each journey with JavaScript on and off."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from e2e.support.axe import assert_accessible
from e2e.support.browser import BrowserGuard
from e2e.support.database import PorticoDatabase
from e2e.support.journeys import (
    CODE_URL,
    PORTAL_URL,
    assert_fragment_swap,
    csrf_token,
    enter_code,
    open_login,
    page_title,
    request_code,
    session_cookie,
    sign_in,
    submit,
)
from e2e.support.mailbox import Mailbox
from e2e.support.server import LiveServer

JENNY = "jenny.rosen@example.com"
SAM = "sam.shared@example.com"
PAT = "pat.trial@example.com"
LEE = "lee.canceling@example.com"
MAX = "max.noplan@example.com"
NOBODY = "nobody@example.com"

Fresh = Callable[[str], int]


def wrong_code(code: str, step: int = 1) -> str:
    return f"{(int(code) + step) % 1_000_000:06d}"


def test_jenny_signs_in(
    page: Page, js: bool, live_server: LiveServer, mailbox: Mailbox, fresh_email: Fresh
) -> None:
    since = fresh_email(JENNY)
    open_login(page, live_server, js)
    expect(page.get_by_role("heading", name="Sign in to Acme Cloud", level=1)).to_be_visible()
    email = page.get_by_label("Email")
    expect(email).to_be_focused()
    email.fill(JENNY)
    response = submit(page, js, "Continue")
    assert response.status == 200
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    passcode = page.get_by_label("Passcode")
    expect(passcode).to_be_visible()
    expect(passcode).to_be_focused()
    expect(passcode).to_have_attribute("autocomplete", "one-time-code")
    expect(page.locator("#login-panel")).to_contain_text(JENNY)
    assert_fragment_swap(page, js)
    expect(page).to_have_url(CODE_URL)
    expect(page).to_have_title(page_title("Check your email"))
    if js:
        assert_accessible(page, "the passcode step (swapped in by htmx)")

    code = mailbox.wait_for_code(JENNY, since=since)
    passcode.fill(code)
    submit(page, js, "Sign in")
    page.wait_for_url(PORTAL_URL)

    main = page.get_by_role("main")
    expect(page.get_by_role("heading", name="Billing overview", level=1)).to_be_visible()
    expect(main.get_by_text("Jenny Rosen", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"^Team\b"), level=3)).to_be_visible()
    expect(page.get_by_role("region", name="Payment method")).to_contain_text("Visa ending in 4242")
    assert session_cookie(page)["httpOnly"] is True
    if js:
        assert_accessible(page, "the overview")


EMAILS = [
    pytest.param("jenny.rosen%40example.com", "jenny.rosen@example.com", id="plain"),
    pytest.param(
        "Jenny.Rosen%2Bbilling%40Example.COM", "Jenny.Rosen+billing@Example.COM", id="encoded-plus"
    ),
    pytest.param(
        "Jenny.Rosen+billing%40Example.com", "Jenny.Rosen+billing@Example.com", id="literal-plus"
    ),
]


@pytest.mark.parametrize(("raw", "shown"), EMAILS)
def test_prefilled_email_fills_the_field(
    page: Page, js: bool, live_server: LiveServer, raw: str, shown: str
) -> None:
    open_login(page, live_server, js, f"?prefilled_email={raw}")
    field = page.get_by_label("Email")
    expect(field).to_have_value(shown)
    expect(field).to_be_editable()
    field.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(MAX)
    expect(field).to_have_value(MAX)


PAYLOADS = [
    pytest.param(
        "%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", '"><script>alert(1)</script>', id="script"
    ),
    pytest.param(
        "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%40example.com",
        "<img src=x onerror=alert(1)>@example.com",
        id="img-onerror",
    ),
]


@pytest.mark.parametrize(("raw", "decoded"), PAYLOADS)
def test_prefilled_email_is_inert(
    page: Page, js: bool, live_server: LiveServer, guard: BrowserGuard, raw: str, decoded: str
) -> None:
    open_login(page, live_server, js, f"?prefilled_email={raw}")
    page.wait_for_timeout(300)  # time for an injected handler to fire, were there one
    assert guard.dialogs == []
    assert page.locator("body script").count() == 0
    assert page.locator("img[src='x'], [onerror]").count() == 0
    expect(page.get_by_label("Email")).to_have_count(1)
    assert page.get_by_label("Email").input_value() in ("", decoded)
    expect(page.get_by_role("button", name="Continue")).to_be_visible()


def test_unknown_email_looks_the_same_and_gets_nothing(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    portico_db: PorticoDatabase,
    fresh_email: Fresh,
) -> None:
    nobody_before = fresh_email(NOBODY)
    jenny_before = fresh_email(JENNY)

    seen = {}
    for address in (NOBODY, JENNY):
        open_login(page, live_server, js)
        response = request_code(page, js, address)
        panel = page.locator("#login-panel").inner_text()
        seen[address] = {
            "status": response.status,
            "text": panel.replace(address, "<email>"),
            "heading": page.get_by_role("heading", level=1).inner_text(),
            "headers": sorted(
                name for name in response.headers if name not in ("date", "content-length")
            ),
        }
    assert seen[NOBODY]["status"] == seen[JENNY]["status"] == 200
    assert seen[NOBODY]["heading"] == seen[JENNY]["heading"] == "Check your email"
    assert seen[NOBODY]["text"] == seen[JENNY]["text"]
    assert seen[NOBODY]["headers"] == seen[JENNY]["headers"]

    # The control: Jenny's code, asked for after nobody's, does arrive …
    mailbox.wait_for_code(JENNY, since=jenny_before)
    # … and nobody's message, queued first, was looked at and skipped, never sent.
    portico_db.wait_for_no_pending_mail(NOBODY)
    time.sleep(2.0)
    assert mailbox.count(NOBODY) == nobody_before
    assert portico_db.outbox_statuses(NOBODY)[-1] == "skipped"


def test_five_wrong_codes_burn_the_code(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    context: BrowserContext,
    guard: BrowserGuard,
) -> None:
    guard.allow_status(401)  # /portal, checked at the end, answers "You are signed out"
    since = fresh_email(PAT)
    open_login(page, live_server, js)
    request_code(page, js, PAT)
    code = mailbox.wait_for_code(PAT, since=since)
    code_url = page.url.split("?")[0]
    panel = page.locator("#login-panel")

    for attempt, left in enumerate((4, 3, 2, 1), start=1):
        response = enter_code(page, js, wrong_code(code, attempt))
        assert response.status == 422
        tries = "try" if left == 1 else "tries"
        expect(panel).to_contain_text(f"That code is not right. You have {left} {tries} left.")
        expect(page.get_by_role("alert")).to_contain_text("There is a problem")
        expect(page.get_by_label("Passcode")).to_have_attribute("aria-invalid", "true")
        expect(page).to_have_title(page_title("Error: Check your email"))
        assert_fragment_swap(page, js)

    response = enter_code(page, js, wrong_code(code, 5))
    assert response.status == 422
    expect(panel).to_contain_text("this code no longer works")
    expect(page.get_by_label("Passcode")).to_have_count(0)
    expect(page.get_by_role("button", name="Send a new code")).to_be_visible()
    assert_fragment_swap(page, js)

    # Even the right code is refused now (posted directly: the page no longer has the field).
    answer = context.request.post(
        code_url,
        form={"_csrf_token": csrf_token(page), "code": code},
        max_redirects=0,
    )
    assert answer.status == 422
    assert "no longer works" in answer.text()
    assert not [c for c in context.cookies() if c["name"] == "portico_session"]

    page.goto(code_url)
    expect(page.get_by_role("heading", name="This code cannot be used")).to_be_visible()
    expect(page.get_by_label("Passcode")).to_have_count(0)
    expect(page.get_by_role("button", name="Send a new code")).to_be_visible()
    page.goto("/portal")
    expect(page.get_by_role("heading", name="Billing overview")).to_have_count(0)


def test_expired_code_is_refused(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    portico_db: PorticoDatabase,
    fresh_email: Fresh,
    guard: BrowserGuard,
) -> None:
    guard.allow_status(401)  # /portal, checked at the end, answers "You are signed out"
    since = fresh_email(LEE)
    open_login(page, live_server, js)
    request_code(page, js, LEE)
    code = mailbox.wait_for_code(LEE, since=since)
    attempt = portico_db.latest_attempt(LEE)
    assert attempt["id"] in page.url
    portico_db.expire_attempt(attempt["id"], datetime.now(UTC) - timedelta(minutes=1))

    response = enter_code(page, js, code)
    assert response.status == 422
    expect(page.locator("#login-panel")).to_contain_text("This code has expired")
    expect(page.get_by_label("Passcode")).to_have_count(0)
    expect(page).not_to_have_url(PORTAL_URL)
    assert not [c for c in page.context.cookies() if c["name"] == "portico_session"]
    assert portico_db.latest_attempt(LEE)["status"] == "live"  # refused, not used
    page.goto("/portal")
    expect(page.get_by_role("heading", name="Billing overview")).to_have_count(0)


def test_shared_email_signs_in_as_the_customer_with_a_plan(
    page: Page, js: bool, live_server: LiveServer, mailbox: Mailbox, fresh_email: Fresh
) -> None:
    since = fresh_email(SAM)
    sign_in(page, live_server, js, mailbox, SAM, since)
    main = page.get_by_role("main")
    expect(main.get_by_text("Sam Older", exact=True)).to_be_visible()
    expect(main).not_to_contain_text("Sam Newer")


def test_sign_out(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    make_context: Callable[..., BrowserContext],
    guard: BrowserGuard,
) -> None:
    guard.allow_status(401)  # the portal without a session answers "You are signed out"
    since = fresh_email(MAX)
    sign_in(page, live_server, js, mailbox, MAX, since)
    cookie = session_cookie(page)
    replayed = {"name": cookie["name"], "value": cookie["value"], "url": live_server.base_url}

    # Control: the cookie alone opens the portal in another browser while the session lives.
    other = make_context(javascript=js)
    other.add_cookies([replayed])
    other_page = other.new_page()
    other_page.goto("/portal")
    expect(other_page.get_by_role("heading", name="Billing overview")).to_be_visible()
    other.close()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(re.escape(live_server.login_path) + r"\?reason=signed_out$"))
    expect(page.get_by_role("status")).to_contain_text("You have signed out.")
    expect(page.get_by_label("Email")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "portico_session"]

    response = page.goto("/portal")
    assert response is not None
    expect(page.get_by_role("heading", name="Billing overview")).to_have_count(0)
    expect(page.get_by_role("heading", name=re.compile("signed out|Sign in"))).to_be_visible()

    replay = make_context(javascript=js)
    replay.add_cookies([replayed])
    replay_page = replay.new_page()
    response = replay_page.goto("/portal")
    assert response is not None
    assert response.status in (200, 401)
    expect(replay_page.get_by_role("heading", name="Billing overview")).to_have_count(0)
    expect(
        replay_page.get_by_role("heading", name=re.compile("signed out|Sign in"))
    ).to_be_visible()


@pytest.mark.parametrize("js", [True], ids=["js-on"])
def test_pages_have_no_accessibility_violations(
    page: Page, js: bool, live_server: LiveServer, mailbox: Mailbox, fresh_email: Fresh
) -> None:
    since = fresh_email(JENNY)
    open_login(page, live_server, js)
    assert_accessible(page, "the login page")

    page.get_by_label("Email").fill("not an email")
    assert submit(page, js, "Continue").status == 422
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    expect(page).to_have_title(page_title("Error: Sign in"))
    assert_accessible(page, "the login page with an error")

    open_login(page, live_server, js)
    request_code(page, js, JENNY)
    code = mailbox.wait_for_code(JENNY, since=since)
    page.reload()  # the pushed URL, loaded whole
    expect(page.get_by_label("Passcode")).to_be_visible()
    assert_accessible(page, "the passcode page")

    assert enter_code(page, js, wrong_code(code)).status == 422
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    assert_accessible(page, "the passcode page with an error")

    enter_code(page, js, code)
    page.wait_for_url(PORTAL_URL)
    expect(page.get_by_role("heading", name="Billing overview")).to_be_visible()
    assert_accessible(page, "the overview")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You have signed out.")
    assert_accessible(page, "the signed-out login page")
