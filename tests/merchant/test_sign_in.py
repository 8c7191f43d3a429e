"""Merchant sign-in, sessions and access to the settings pages."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from app.login.tables import WebSession
from app.merchant import access as merchant_access
from app.merchant import accounts
from app.merchant.tables import MerchantAccount, MerchantSignInLimit
from tests.helpers import HX, JENNY, csrf_token, without_html
from tests.merchant.support import COOKIE, EMAIL, PASSWORD, events, signed_in

SETTINGS_PAGES = ("profile", "branding", "login-link", "login-link/rotate")
SETTINGS_POSTS = (
    "profile",
    "branding",
    "branding/preview",
    "login-link/activate",
    "login-link/deactivate",
    "login-link/rotate",
)


def _location(response) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(response.headers["location"])
    return parts.path, parse_qs(parts.query)


# -- access without a merchant session ----------------------------------------------------------


async def test_every_settings_page_needs_a_merchant_session(merchant):
    for page in SETTINGS_PAGES:
        response = await merchant.client.get(merchant.url(page))
        assert response.status_code == 303, page
        path, query = _location(response)
        assert path == "/merchant/sign-in"
        assert query["next"] == [merchant.url(page)]
    response = await merchant.client.get("/merchant")
    assert response.status_code == 303
    assert _location(response) == ("/merchant/sign-in", {"next": ["/merchant"]})
    preview_css = await merchant.client.get("/merchant/branding-preview.css?brand_color=%23000000")
    assert preview_css.status_code == 303


async def test_every_settings_post_needs_a_merchant_session(merchant):
    for page in SETTINGS_POSTS:
        response = await merchant.post(
            merchant.url(page),
            {"business_name": "Hijacked", "brand_color": "#000000"},
            headers={"Referer": f"http://portal.test{merchant.url('profile')}"},
        )
        assert response.status_code == 303, page
        path, query = _location(response)
        assert path == "/merchant/sign-in"
        assert query.get("next") == [merchant.url("profile")]
    assert await events("configuration.profile_updated") == []
    assert await events("configuration.login_link_rotated") == []


async def test_htmx_requests_without_a_session_navigate_to_sign_in(merchant):
    response = await merchant.client.get(merchant.url("profile"), headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/merchant/sign-in?next=")
    assert without_html(response.text)


async def test_a_customer_session_never_grants_merchant_access(merchant):
    customer_token = await merchant.portal.sign_in(JENNY)
    assert (await merchant.client.get("/portal")).status_code == 200
    response = await merchant.client.get(merchant.url("profile"))
    assert response.status_code == 303
    assert _location(response)[0] == "/merchant/sign-in"
    # Even presented as the merchant cookie, a customer session is not a merchant's.
    merchant.client.cookies.set(COOKIE, customer_token, domain="portal.test")
    response = await merchant.client.get(merchant.url("profile"))
    assert response.status_code == 303
    assert _location(response)[0] == "/merchant/sign-in"
    response = await merchant.post(merchant.url("profile"), {"business_name": "Hijacked"})
    assert response.status_code == 303
    assert await events("configuration.profile_updated") == []


# -- signing in ---------------------------------------------------------------------------------


async def test_sign_in_page(merchant):
    response = await merchant.client.get("/merchant/sign-in")
    assert response.status_code == 200
    html = response.text
    assert '<label class="field__label" for="email">Email</label>' in html
    assert '<label class="field__label" for="password">Password</label>' in html
    assert 'autocomplete="current-password"' in html
    assert ">Sign in</button>" in html
    assert csrf_token(html)


async def test_sign_in_success_goes_to_the_default_configuration(merchant):
    response = await merchant.sign_in()
    assert response.status_code == 303
    assert response.headers["location"] == "/merchant"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    home = await merchant.client.get("/merchant")
    assert home.status_code == 303
    assert home.headers["location"] == merchant.url("profile")
    page = await merchant.client.get(merchant.url("profile"))
    assert page.status_code == 200
    assert "Business profile" in page.text
    assert EMAIL in page.text
    row = await MerchantAccount.select().where(MerchantAccount.email == EMAIL).first()
    assert row["last_sign_in_at"] is not None
    [event] = await events("merchant.signed_in")
    assert event["actor_type"] == "merchant"
    assert event["actor_email"] == EMAIL
    assert event["actor_id"] == row["id"]


async def test_sign_in_is_case_insensitive_on_the_email(merchant):
    response = await merchant.sign_in("  Owner@ACME.example ")
    assert response.status_code == 303


async def test_sign_in_returns_to_next_when_it_is_a_local_merchant_path(merchant):
    first = await merchant.client.get(merchant.url("branding"))
    next_url = parse_qs(urlsplit(first.headers["location"]).query)["next"][0]
    form = await merchant.client.get(first.headers["location"])
    assert f'name="next" value="{next_url}"' in form.text
    response = await merchant.sign_in(next_url=next_url)
    assert response.status_code == 303
    assert response.headers["location"] == merchant.url("branding")


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/merchant",
        "//evil.example/merchant",
        "/\\evil.example",
        "/merchant/../portal",
        "/merchant/%2e%2e/portal",
        "/portal",
        "/merchant//evil.example",
        "javascript:alert(1)",
        "/merchant/sign-in",
    ],
)
async def test_next_is_ignored_unless_it_is_a_local_merchant_path(merchant, next_url):
    assert merchant_access.safe_next(next_url) is None
    response = await merchant.sign_in(next_url=next_url)
    assert response.status_code == 303
    assert response.headers["location"] == "/merchant"


def test_safe_next_keeps_local_paths_and_plain_queries():
    assert merchant_access.safe_next("/merchant") == "/merchant"
    assert merchant_access.safe_next("/merchant/configurations/bpc_1/profile") == (
        "/merchant/configurations/bpc_1/profile"
    )
    assert merchant_access.safe_next(
        "/merchant/configurations/bpc_1/login-link/prefill?email=a%2Bb%40example.com"
    ) == ("/merchant/configurations/bpc_1/login-link/prefill?email=a%2Bb%40example.com")
    assert merchant_access.safe_next("/merchant/x?a=<script>") is None
    assert merchant_access.safe_next("/merchant/x#frag") is None


async def test_sign_in_with_htmx_navigates_with_hx_redirect(merchant):
    response = await merchant.sign_in(htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/merchant"
    assert merchant.session_cookie()


async def test_wrong_password_is_refused_with_a_message(merchant):
    response = await merchant.sign_in(password="not the password")
    assert response.status_code == 422
    assert "There is a problem" in response.text
    assert "The email address or password is not right." in response.text
    assert "<title>Error:" in response.text
    assert f'value="{EMAIL}"' in response.text
    assert "not the password" not in response.text
    assert merchant.session_cookie() is None
    [event] = await events("merchant.sign_in_failed")
    assert event["actor_email"] == EMAIL


async def test_missing_fields_are_refused_field_by_field(merchant):
    response = await merchant.post("/merchant/sign-in", {"email": "nope", "password": ""})
    assert response.status_code == 422
    assert "Enter an email address like name@example.com." in response.text
    assert "Enter your password." in response.text
    htmx = await merchant.post("/merchant/sign-in", {"email": "", "password": ""}, htmx=True)
    assert htmx.status_code == 422
    assert without_html(htmx.text)
    assert 'id="sign-in-panel"' in htmx.text


async def test_unknown_email_gets_the_same_answer_and_the_same_work(
    merchant, monkeypatch, real_hashing
):
    verified: list[str] = []
    real_verify = accounts.verify_password

    async def counting_verify(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return await real_verify(password_hash, password)

    monkeypatch.setattr(accounts, "verify_password", counting_verify)
    unknown = "ownex@acme.example"  # as long as EMAIL
    assert len(unknown) == len(EMAIL)
    known_response = await merchant.sign_in(EMAIL, "wrong password!")
    unknown_response = await merchant.sign_in(unknown, "wrong password!")
    assert known_response.status_code == unknown_response.status_code == 422

    def normalised(html: str) -> str:
        html = re.sub(r'value="[^"]*"', 'value=""', html)
        return re.sub(r'"x-csrftoken": "[^"]+"', "", html).replace(unknown, EMAIL)

    assert normalised(known_response.text) == normalised(unknown_response.text)
    assert dict(known_response.headers).keys() == dict(unknown_response.headers).keys()
    # Both verified one argon2id hash with the same parameters (the unknown one a dummy).
    assert len(verified) == 2
    assert verified[0].split("$")[:4] == verified[1].split("$")[:4]
    assert verified[1].startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_ten_failures_lock_the_email_for_fifteen_minutes(merchant, fake_clock):
    for attempt in range(1, accounts.MAX_FAILURES):
        response = await merchant.sign_in(password=f"wrong password {attempt}")
        assert response.status_code == 422, attempt
        fake_clock.advance(seconds=30)
    response = await merchant.sign_in(password="wrong password 10")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts for this email address" in response.text
    assert "15 minutes" in response.text
    # Locked: even the right password is refused, and nothing is verified.
    response = await merchant.sign_in()
    assert response.status_code == 429
    assert merchant.session_cookie() is None
    fake_clock.advance(minutes=14)
    assert (await merchant.sign_in()).status_code == 429
    fake_clock.advance(minutes=1, seconds=1)
    response = await merchant.sign_in()
    assert response.status_code == 303
    assert await MerchantSignInLimit.count() == 0  # success clears the record
    assert len(await events("merchant.sign_in_locked")) == 1


async def test_failures_outside_the_window_do_not_add_up(merchant, fake_clock):
    for _ in range(accounts.MAX_FAILURES - 1):
        assert (await merchant.sign_in(password="wrong password!")).status_code == 422
    fake_clock.advance(minutes=16)
    for _ in range(accounts.MAX_FAILURES - 1):
        assert (await merchant.sign_in(password="wrong password!")).status_code == 422
    assert (await merchant.sign_in()).status_code == 303


async def test_unknown_emails_lock_exactly_like_known_ones(merchant, monkeypatch):
    from app.merchant import controller

    monkeypatch.setattr(controller, "SIGN_INS_PER_MINUTE", 100)  # not the address throttle
    for email in (EMAIL, "ownex@acme.example"):
        statuses = [
            (await merchant.sign_in(email, "wrong password!")).status_code
            for _ in range(accounts.MAX_FAILURES + 1)
        ]
        assert statuses == [422] * (accounts.MAX_FAILURES - 1) + [429, 429], email


async def test_sign_in_is_throttled_per_address(merchant, monkeypatch):
    from app.merchant import controller

    monkeypatch.setattr(controller, "SIGN_INS_PER_MINUTE", 3)
    for _ in range(3):
        assert (await merchant.sign_in(password="wrong password!")).status_code == 422
    response = await merchant.sign_in()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"


# -- sessions -----------------------------------------------------------------------------------


async def test_the_session_id_changes_at_sign_in(merchant):
    merchant.client.cookies.set(COOKIE, "planted-by-an-attacker", domain="portal.test")
    await signed_in(merchant)
    first = merchant.session_cookie()
    assert first
    assert first != "planted-by-an-attacker"
    await signed_in(merchant)
    second = merchant.session_cookie()
    assert second != first
    digest = hashlib.sha256(first.encode()).hexdigest()
    assert await WebSession.count().where(WebSession.id == digest) == 0  # replaced, not kept
    rows = await WebSession.select().where(WebSession.kind == "merchant")
    assert len(rows) == 1
    assert rows[0]["id"] == hashlib.sha256(second.encode()).hexdigest()


async def test_signed_in_visitors_skip_the_sign_in_form(merchant):
    await signed_in(merchant)
    response = await merchant.client.get("/merchant/sign-in")
    assert response.status_code == 303
    assert response.headers["location"] == "/merchant"


async def test_sign_out_ends_the_session(merchant):
    await signed_in(merchant)
    token = merchant.session_cookie()
    response = await merchant.post("/merchant/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/merchant/sign-in?reason=signed_out"
    assert await WebSession.count().where(WebSession.kind == "merchant") == 0
    page = await merchant.client.get(response.headers["location"])
    assert "You have signed out." in page.text
    # The old token is worthless even if replayed.
    merchant.client.cookies.set(COOKIE, token, domain="portal.test")
    assert (await merchant.client.get(merchant.url("profile"))).status_code == 303
    assert len(await events("merchant.signed_out")) == 1


async def test_sign_out_is_a_post(merchant):
    await signed_in(merchant)
    assert (await merchant.client.get("/merchant/sign-out")).status_code == 405
    assert await WebSession.count().where(WebSession.kind == "merchant") == 1


async def test_idle_sessions_end_after_fifteen_minutes(merchant, fake_clock):
    await signed_in(merchant)
    fake_clock.advance(minutes=14)
    assert (await merchant.client.get(merchant.url("profile"))).status_code == 200
    fake_clock.advance(minutes=14)  # still within 15 minutes of the last request
    assert (await merchant.client.get(merchant.url("profile"))).status_code == 200
    fake_clock.advance(minutes=15)
    response = await merchant.client.get(merchant.url("profile"))
    assert response.status_code == 303
    path, query = _location(response)
    assert path == "/merchant/sign-in"
    assert query["reason"] == ["expired"]
    page = await merchant.client.get(response.headers["location"])
    assert "session ended" in page.text


async def test_sessions_end_twelve_hours_after_sign_in(merchant, fake_clock):
    await signed_in(merchant)
    for _ in range(12 * 6 - 1):  # busy all day: a request every 10 minutes
        fake_clock.advance(minutes=10)
        assert (await merchant.client.get(merchant.url("profile"))).status_code == 200
    fake_clock.advance(minutes=10)
    response = await merchant.client.get(merchant.url("profile"))
    assert response.status_code == 303
    assert _location(response)[1]["reason"] == ["expired"]


async def test_a_deleted_account_loses_its_session(merchant):
    await signed_in(merchant)
    await MerchantAccount.delete().where(MerchantAccount.email == EMAIL)
    response = await merchant.client.get(merchant.url("profile"))
    assert response.status_code == 303
    assert await WebSession.count().where(WebSession.kind == "merchant") == 0


async def test_merchant_cookie_is_host_prefixed_and_secure_over_https(settings, demo, account):
    import msgspec

    from tests.merchant.support import open_merchant

    https = msgspec.structs.replace(settings, base_url="https://portal.test")
    async with open_merchant(https, demo) as merchant:
        merchant.client.base_url = "https://portal.test"
        token = await merchant.csrf()
        response = await merchant.client.post(
            "https://portal.test/merchant/sign-in",
            data={"email": EMAIL, "password": PASSWORD, "_csrf_token": token},
        )
        assert response.status_code == 303, response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"__Host-{COOKIE}=")
        assert "Secure" in cookie
        assert "Path=/" in cookie
