"""The login link over HTTP: email → passcode → session, without JavaScript and with htmx."""

from __future__ import annotations

import re

import pytest

from app.audit.tables import AuditEvent
from app.configuration.tables import PortalConfiguration
from app.login import passcodes
from app.login.tables import LoginAttempt, WebSession
from app.mail.tables import OutboxMessage
from app.settings import Settings
from tests.helpers import (
    HX,
    JENNY,
    NOBODY,
    PAT,
    code_of,
    open_portal,
    without_html,
    wrong_code,
)

BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])


def _headers(htmx: bool) -> dict[str, str]:
    return HX if htmx else {}


def _email_value(html: str) -> str:
    found = re.search(r'<input[^>]*\bid="email"[^>]*\bvalue="([^"]*)"', html)
    assert found, "no email input"
    return found.group(1)


def _assert_page_kind(response, htmx: bool) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert "HX-Request" in response.headers.get("vary", "")
    if htmx:
        assert without_html(response.text)
        assert 'id="login-panel"' in response.text
    else:
        assert "<html" in response.text
        assert "<title>" in response.text


# --- the email step ----------------------------------------------------------------------------


@BOTH
async def test_the_login_page(portal, htmx):
    response = await portal.client.get(portal.login_path, headers=_headers(htmx))
    assert response.status_code == 200
    _assert_page_kind(response, htmx)
    assert '<label class="field__label" for="email">Email</label>' in response.text
    assert re.search(r'<input[^>]*name="email"[^>]*type="email"', response.text)
    assert 'autocomplete="email"' in response.text
    assert "Sign in to Acme Cloud" in response.text
    assert _email_value(response.text) == ""
    assert f'action="{portal.login_path}"' in response.text
    assert f'hx-post="{portal.login_path}"' in response.text
    assert 'name="_csrf_token"' in response.text
    if not htmx:
        assert "<title>Sign in \u2013 Acme Cloud</title>" in response.text


PREFILLS = [
    ("jenny.rosen%40example.com", "jenny.rosen@example.com"),
    ("jenny+billing@example.com", "jenny+billing@example.com"),  # a literal + stays a +
    ("jenny%2Bbilling%40example.com", "jenny+billing@example.com"),
    ("Jenny.Rosen@Example.COM", "Jenny.Rosen@Example.COM"),  # shown as given
    ("a%26b%40example.com", "a&amp;b@example.com"),  # escaped
    ("not-an-email", ""),
    ("", ""),
    ("%3Cscript%3Ealert(1)%3C%2Fscript%3E%40example.com", ""),
    ("%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", ""),
    ("x%40example.com%22%20autofocus%20onfocus%3D%22alert(1)", ""),
]


@BOTH
async def test_prefilled_email(portal, htmx):
    for query, shown in PREFILLS:
        response = await portal.client.get(
            f"{portal.login_path}?prefilled_email={query}", headers=_headers(htmx)
        )
        assert response.status_code == 200
        _assert_page_kind(response, htmx)
        assert _email_value(response.text) == shown, query
        assert "<script>alert" not in response.text
        assert "onfocus" not in response.text


@BOTH
async def test_an_unknown_or_switched_off_link_is_not_found(portal, htmx):
    for path in ("/p/login/no-such-token", "/p/login/" + "x" * 80):
        response = await portal.client.get(path, headers=_headers(htmx))
        assert response.status_code == 404
        assert "<html" in response.text  # a whole page, even for htmx
        assert "Page not found" in response.text

    await PortalConfiguration.update({PortalConfiguration.login_page_enabled: False}).where(
        PortalConfiguration.login_page_token.is_not_null()
    )
    response = await portal.client.get(portal.login_path, headers=_headers(htmx))
    assert response.status_code == 404
    assert "Page not found" in response.text

    await PortalConfiguration.update(
        {PortalConfiguration.login_page_enabled: True, PortalConfiguration.active: False}
    ).where(PortalConfiguration.login_page_token.is_not_null())
    response = await portal.client.get(portal.login_path, headers=_headers(htmx))
    assert response.status_code == 404


INVALID_EMAILS = [
    ("not-an-email", "Enter an email address like name@example.com."),
    ("   ", "Enter your email address."),
    ("jenny@", "Enter an email address like name@example.com."),
    ("<b>@example.com", "Enter an email address like name@example.com."),
]


@BOTH
async def test_an_invalid_email_is_shown_again_with_its_error(portal, htmx):
    for email, message in INVALID_EMAILS:
        response = await portal.post(portal.login_path, {"email": email}, htmx=htmx)
        assert response.status_code == 422
        _assert_page_kind(response, htmx)
        assert "There is a problem" in response.text
        assert message in response.text
        assert 'aria-invalid="true"' in response.text
        assert 'aria-describedby="email-hint email-error"' in response.text
        assert '<a href="#email">' in response.text
        assert _email_value(response.text) == email.replace("<", "&lt;").replace(">", "&gt;")
        assert re.search(r"<title>Error: ", response.text)  # a fragment updates the title too
    too_long = await portal.post(portal.login_path, {"email": "a" * 1001}, htmx=htmx)
    assert too_long.status_code == 422
    assert "This is too long." in too_long.text
    assert await LoginAttempt.count() == 0


@BOTH
async def test_a_valid_email_moves_on_to_the_code(portal, htmx):
    response = await portal.request_code(JENNY, htmx=htmx)
    attempt_id = await portal.latest_attempt(JENNY)
    code_url = portal.code_url(attempt_id)
    if htmx:
        assert response.status_code == 200
        _assert_page_kind(response, htmx)
        assert response.headers["hx-push-url"] == code_url
        assert "location" not in response.headers
        page = response
    else:
        assert response.status_code == 303
        assert response.headers["location"] == f"{code_url}?notice=sent"
        page = await portal.client.get(response.headers["location"])
        assert page.status_code == 200
        _assert_page_kind(page, htmx=False)
    assert '<label class="field__label" for="code">Passcode</label>' in page.text
    assert 'autocomplete="one-time-code"' in page.text
    assert 'inputmode="numeric"' in page.text
    assert "autofocus" in page.text
    assert JENNY in page.text
    assert f'action="{code_url}"' in page.text
    assert f'action="{code_url}/resend"' in page.text

    # Queued for the worker (which is off here), never sent within the request.
    [row] = await OutboxMessage.select()
    assert row["status"] == "queued"
    assert row["attempts"] == 0
    assert row["reference"] == attempt_id


def _normalised(response, email: str, attempt_id: str) -> tuple:
    def clean(value: str) -> str:
        return value.replace(attempt_id, "ATTEMPT").replace(email, "EMAIL")

    headers = sorted((name, clean(value)) for name, value in response.headers.multi_items())
    return response.status_code, headers, clean(response.text)


@BOTH
async def test_known_and_unknown_emails_look_the_same(portal, htmx, fake_clock):
    token = await portal.csrf()
    responses = {}
    for email in (JENNY, NOBODY):
        responses[email] = await portal.client.post(
            portal.login_path, data={"email": email, "_csrf_token": token}, headers=_headers(htmx)
        )
    known = _normalised(responses[JENNY], JENNY, await portal.latest_attempt(JENNY))
    unknown = _normalised(responses[NOBODY], NOBODY, await portal.latest_attempt(NOBODY))
    assert known == unknown
    assert known[0] == (200 if htmx else 303)

    # Asking again within the minute: the same "cooldown" answer for both.
    fake_clock.advance(seconds=20)
    for email in (JENNY, NOBODY):
        responses[email] = await portal.client.post(
            portal.login_path, data={"email": email, "_csrf_token": token}, headers=_headers(htmx)
        )
    known = _normalised(responses[JENNY], JENNY, await portal.latest_attempt(JENNY))
    unknown = _normalised(responses[NOBODY], NOBODY, await portal.latest_attempt(NOBODY))
    assert known == unknown
    if not htmx:
        assert "notice=cooldown" in dict(known[1])["location"]
    assert await OutboxMessage.count() == 2


# --- the code step -----------------------------------------------------------------------------


@BOTH
async def test_the_code_page_loads_directly(portal, htmx):
    await portal.request_code(JENNY)
    attempt_id = await portal.latest_attempt(JENNY)
    response = await portal.client.get(portal.code_url(attempt_id), headers=_headers(htmx))
    assert response.status_code == 200
    _assert_page_kind(response, htmx)
    assert 'id="code"' in response.text

    missing = await portal.client.get(portal.code_url("no-such-attempt"), headers=_headers(htmx))
    assert missing.status_code == 404


@BOTH
async def test_a_wrong_code(portal, htmx):
    await portal.request_code(JENNY)
    attempt_id = await portal.latest_attempt(JENNY)
    code = await code_of(portal.settings, attempt_id)
    url = portal.code_url(attempt_id)

    response = await portal.post(url, {"code": wrong_code(code)}, htmx=htmx)
    assert response.status_code == 422
    _assert_page_kind(response, htmx)
    assert "There is a problem" in response.text
    assert "You have 4 tries left." in response.text
    assert 'aria-invalid="true"' in response.text
    assert re.search(r"<title>Error: ", response.text)

    malformed = await portal.post(url, {"code": "12ab"}, htmx=htmx)
    assert malformed.status_code == 422
    assert "The code is 6 digits" in malformed.text
    empty = await portal.post(url, {"code": ""}, htmx=htmx)
    assert empty.status_code == 422
    assert "Enter the 6-digit code" in empty.text
    # Only real guesses count.
    assert (await LoginAttempt.select(LoginAttempt.failed_attempts).first())["failed_attempts"] == 1


@BOTH
async def test_a_burned_code_offers_a_new_one(portal, htmx):
    await portal.request_code(JENNY)
    attempt_id = await portal.latest_attempt(JENNY)
    code = await code_of(portal.settings, attempt_id)
    url = portal.code_url(attempt_id)
    for _ in range(4):
        await portal.post(url, {"code": wrong_code(code)})
    response = await portal.post(url, {"code": wrong_code(code)}, htmx=htmx)
    assert response.status_code == 422
    assert "Too many wrong tries" in response.text
    assert "This code cannot be used" in response.text
    assert 'id="code"' not in response.text  # no field for a dead code
    assert "Send a new code" in response.text
    page = await portal.client.get(url)
    assert "Too many wrong tries" in page.text


@BOTH
async def test_a_locked_email(portal, htmx):
    await portal.request_code(JENNY)
    attempt_id = await portal.latest_attempt(JENNY)
    code = await code_of(portal.settings, attempt_id)
    await LoginAttempt.update({LoginAttempt.failed_attempts: 20}).where(
        LoginAttempt.id == attempt_id
    )
    response = await portal.post(portal.code_url(attempt_id), {"code": code}, htmx=htmx)
    assert response.status_code == 429
    assert "paused for 24 hours" in response.text
    assert "set-cookie" not in response.headers


@BOTH
async def test_the_right_code_signs_in(portal, htmx):
    await portal.request_code(JENNY)
    attempt_id = await portal.latest_attempt(JENNY)
    code = await code_of(portal.settings, attempt_id)
    response = await portal.post(portal.code_url(attempt_id), {"code": code}, htmx=htmx)
    if htmx:
        assert response.status_code == 200
        assert response.headers["hx-redirect"] == "/portal"
        assert response.text == ""
    else:
        assert response.status_code == 303
        assert response.headers["location"] == "/portal"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("portico_session=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes  # served over http here
    assert not any(a.startswith(("max-age", "expires")) for a in attributes)  # ends with browser

    assert await WebSession.count() == 1
    assert (await LoginAttempt.select(LoginAttempt.status).first())["status"] == passcodes.USED
    [event] = await AuditEvent.select()
    assert event["action"] == "customer.signed_in"
    assert event["actor_email"] == JENNY
    assert event["object_id"] == "cus_jenny"
    assert code not in str(event)

    again = await portal.post(portal.code_url(attempt_id), {"code": code}, htmx=htmx)
    assert again.status_code == 422
    assert "already been used" in again.text


async def test_over_https_the_cookies_are_secure_and_host_only(db, shop, settings):
    fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
    secure = Settings(**{**fields, "base_url": "https://portal.test"})
    async with open_portal(secure, shop, base_url="https://portal.test") as portal:
        page = await portal.client.get(portal.login_path)
        csrf_cookie = page.headers["set-cookie"]
        assert csrf_cookie.startswith("__Host-csrftoken=")
        assert "secure" in csrf_cookie.lower()
        assert "strict-transport-security" in page.headers

        await portal.request_code(JENNY)
        attempt_id = await portal.latest_attempt(JENNY)
        code = await code_of(secure, attempt_id)
        response = await portal.post(portal.code_url(attempt_id), {"code": code})
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-portico_session=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)
        assert (await portal.client.get("/portal")).status_code == 200


async def test_the_session_id_changes_at_sign_in(portal):
    pat = await portal.sign_in(PAT)
    assert portal.client.cookies.get("portico_session") == pat
    # Signing in again in the same browser, as someone else: the old cookie goes along.
    jenny = await portal.sign_in(JENNY)
    assert jenny != pat
    assert portal.client.cookies.get("portico_session") == jenny
    assert await WebSession.count() == 1
    old = await portal.client.get("/portal", headers={"Cookie": f"portico_session={pat}"})
    assert old.status_code == 401
    new = await portal.client.get("/portal", headers={"Cookie": f"portico_session={jenny}"})
    assert new.status_code == 200
    assert "Jenny Rosen" in new.text


# --- asking again ------------------------------------------------------------------------------


@BOTH
async def test_resend(portal, htmx, fake_clock):
    await portal.request_code(JENNY)
    first = await portal.latest_attempt(JENNY)
    resend = portal.code_url(first) + "/resend"

    fake_clock.advance(seconds=20)
    response = await portal.post(resend, htmx=htmx)
    if htmx:
        assert response.status_code == 200
        assert response.headers["hx-push-url"] == portal.code_url(first)
        page = response
    else:
        assert response.status_code == 303
        assert response.headers["location"] == f"{portal.code_url(first)}?notice=cooldown&wait=41"
        page = await portal.client.get(response.headers["location"])
    assert "ask for a new one in 41 seconds" in page.text
    assert await OutboxMessage.count() == 1

    fake_clock.advance(seconds=41)
    response = await portal.post(resend, htmx=htmx)
    second = await portal.latest_attempt(JENNY)
    assert second != first
    if htmx:
        assert response.headers["hx-push-url"] == portal.code_url(second)
    else:
        assert response.headers["location"] == f"{portal.code_url(second)}?notice=sent"
    assert await OutboxMessage.count() == 2
    old_page = await portal.client.get(portal.code_url(first))
    assert "A newer code was sent" in old_page.text


async def test_notices_in_the_query_are_limited_to_known_ones(portal):
    await portal.request_code(JENNY)
    url = portal.code_url(await portal.latest_attempt(JENNY))
    page = await portal.client.get(f"{url}?notice=<b>hi</b>&wait=abc")
    assert page.status_code == 200
    assert "<b>hi</b>" not in page.text
    hourly = await portal.client.get(f"{url}?notice=hourly_limit&wait=1800")
    assert "ask for a new one in 30 minutes" in hourly.text


@BOTH
async def test_a_limit_reached_on_another_portal_stays_on_the_email_step(portal, htmx, fake_clock):
    # The hourly limit counts an email across portals; a portal with no attempt of its own for
    # the email answers on the email step with the notice (it used to answer 404).
    from app.configuration import service as configurations

    other = PortalConfiguration(
        id=configurations.new_configuration_id(),
        login_page_token=configurations.new_login_token(),
        business_name="Other",
    )
    await PortalConfiguration.insert(other)
    for _ in range(passcodes.SENDS_PER_HOUR):
        await passcodes.request_code(portal.settings, other, JENNY)
        fake_clock.advance(seconds=61)
    response = await portal.request_code(JENNY, htmx=htmx)
    assert response.status_code == 429
    _assert_page_kind(response, htmx)
    assert "several codes in the last hour" in response.text
    assert _email_value(response.text) == JENNY
    assert await OutboxMessage.count() == passcodes.SENDS_PER_HOUR
