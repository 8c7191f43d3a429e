"""CSRF on every POST, security headers, body size, client address."""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute

from app.factory import _csrf
from app.settings import Settings
from app.web.security import client_ip, content_security_policy, security_headers
from tests.helpers import HX, JENNY, open_portal

EXEMPT = {"/webhooks/stripe"}  # protected by its signature instead (design.md §3.7)
PLACEHOLDERS = {int: "1", str: "x"}


def _post_paths(app) -> list[str]:
    paths = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "POST" not in route.methods:
            continue
        if route.path in EXEMPT:
            continue
        path = route.path_format
        for name, parameter in route.path_parameters.items():
            path = path.replace("{" + name + "}", PLACEHOLDERS.get(parameter.type, "1"))
        paths.append(path)
    return sorted(paths)


def _csp(response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives = {}
    for part in policy.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


async def test_every_post_route_needs_the_csrf_token(portal):
    paths = _post_paths(portal.app)
    # The routes this file knows about are among them (a renamed route fails here, on purpose).
    assert {
        portal.login_path.replace(portal.login_path.rsplit("/", 1)[1], "x"),
        "/p/login/x/code/x",
        "/p/login/x/code/x/resend",
        "/portal/sign-out",
    } <= set(paths)

    for path in paths:
        bare = await portal.client.post(path, data={"email": JENNY})
        assert bare.status_code == 403, path
        assert "This form has expired" in bare.text

    token = await portal.csrf()  # now the client holds the CSRF cookie
    for path in paths:
        for headers in ({}, HX):
            wrong = await portal.client.post(
                path, data={"email": JENNY, "_csrf_token": token[:-4] + "beef"}, headers=headers
            )
            assert wrong.status_code == 403, path
            missing = await portal.client.post(path, data={"email": JENNY}, headers=headers)
            assert missing.status_code == 403, path


async def test_the_token_works_as_a_field_or_a_header(portal):
    token = await portal.csrf()
    as_field = await portal.client.post(portal.login_path, data={"_csrf_token": token})
    assert as_field.status_code == 422  # past the CSRF check: the empty form is refused
    as_header = await portal.client.post(
        portal.login_path, data={"email": ""}, headers={**HX, "x-csrftoken": token}
    )
    assert as_header.status_code == 422


def test_only_the_stripe_webhook_is_exempt():
    config = _csrf(Settings(secret_key="s" * 40))
    assert set(config.exclude or []) == EXEMPT
    assert config.cookie_httponly
    assert config.cookie_samesite == "lax"
    secure = _csrf(Settings(secret_key="s" * 40, base_url="https://billing.example.com"))
    assert secure.cookie_name == "__Host-csrftoken"
    assert secure.cookie_secure


def _assert_security_headers(response) -> None:
    csp = _csp(response)
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # http here


async def test_security_headers_on_pages(portal):
    await portal.sign_in(JENNY)
    for path in (portal.login_path, "/portal", "/no-such-page", "/signed-out"):
        for headers in ({}, HX):
            response = await portal.client.get(path, headers=headers)
            assert response.headers["content-type"].startswith("text/html"), path
            _assert_security_headers(response)
            assert response.headers["cache-control"] == "no-store", path
    portal_page = await portal.client.get("/portal")
    assert portal_page.status_code == 200
    assert portal_page.headers["cache-control"] == "no-store"
    # The htmx script may come from its CDN, pinned with SRI.
    login = await portal.client.get(portal.login_path)
    script = re.search(r"<script [^>]*src=\"([^\"]+)\"[^>]*>", login.text)
    assert script
    assert 'integrity="sha384-' in script.group(0)
    assert 'crossorigin="anonymous"' in script.group(0)
    origin = "/".join(script.group(1).split("/")[:3])
    assert origin in _csp(login)["script-src"]


async def test_security_headers_on_static_files(portal):
    response = await portal.client.get("/static/css/portico.css")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in response.headers
    assert "no-store" not in response.headers.get("cache-control", "")


def test_hsts_only_over_https():
    plain = dict(security_headers(Settings(base_url="http://portal.test")))
    secure = dict(security_headers(Settings(base_url="https://portal.test")))
    assert b"strict-transport-security" not in plain
    assert secure[b"strict-transport-security"].startswith(b"max-age=31536000")


def test_a_self_hosted_htmx_needs_no_other_origin():
    policy = content_security_policy(Settings(htmx_url="/static/js/htmx.min.js"))
    assert "script-src 'self';" in policy


async def test_a_body_over_one_mebibyte_is_refused(portal):
    token = await portal.csrf()
    response = await portal.client.post(
        portal.login_path,
        content=b"_csrf_token=" + token.encode() + b"&email=" + b"a" * (1024 * 1024 + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert "That upload is too large" in response.text


@pytest.mark.parametrize(
    ("scope", "expected"),
    [({"client": ("203.0.113.5", 5555)}, "203.0.113.5"), ({"client": None}, ""), ({}, "")],
)
def test_client_ip(scope, expected):
    assert client_ip(scope) == expected  # type: ignore[arg-type]


async def test_https_pages(db, shop, settings):
    fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
    secure = Settings(**{**fields, "base_url": "https://portal.test"})
    async with open_portal(secure, shop, base_url="https://portal.test") as portal:
        response = await portal.client.get(portal.login_path)
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")


def test_stripe_mode_lets_forms_redirect_to_stripe_hosted_pages_only():
    # Regression: with JavaScript off, "Pay invoice" answers 303 to Stripe's hosted invoice page,
    # and form-action 'self' made the browser refuse to follow it.
    from app.web.security import content_security_policy

    sandbox = Settings(secret_key="k" * 40)
    stripe = Settings(
        secret_key="k" * 40,
        billing="stripe",
        stripe_secret_key="sk_test_x",
        stripe_api_base="http://127.0.0.1:9999",
    )
    assert "form-action 'self';" in content_security_policy(sandbox)
    policy = content_security_policy(stripe)
    form_action = next(p for p in policy.split("; ") if p.startswith("form-action"))
    assert form_action == (
        "form-action 'self' https://checkout.stripe.com https://invoice.stripe.com "
        "https://pay.stripe.com http://127.0.0.1:9999"
    )
    assert "script-src 'self' https://cdn.jsdelivr.net;" in policy
