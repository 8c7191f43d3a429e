"""Error pages: whole, friendly HTML pages with the right status; never a stack trace."""

from __future__ import annotations

import pytest
from litestar import get
from litestar.params import FromQuery

from tests.helpers import HX

BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])


@get("/boom", name="test:boom")
async def boom() -> str:
    raise RuntimeError("secret internal detail")


@get("/needs-a-number", name="test:number")
async def needs_a_number(n: FromQuery[int]) -> str:
    return str(n)


def _register(app) -> None:
    if not any(route.path == "/boom" for route in app.routes):
        app.register(boom)
        app.register(needs_a_number)


def _is_error_page(response, status: int, title: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text  # a whole page, also for htmx
    assert f"<h1>{title}</h1>" in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


@BOTH
async def test_not_found(portal, htmx):
    response = await portal.client.get("/no/such/page", headers=HX if htmx else {})
    _is_error_page(response, 404, "Page not found")


@BOTH
async def test_method_not_allowed(portal, htmx):
    response = await portal.client.get("/portal/sign-out", headers=HX if htmx else {})
    _is_error_page(response, 405, "That action is not available here")


@BOTH
async def test_a_crash_shows_no_traceback(portal, htmx, caplog):
    _register(portal.app)
    response = await portal.client.get("/boom", headers=HX if htmx else {})
    _is_error_page(response, 500, "Something went wrong")
    for secret in ("Traceback", "RuntimeError", "secret internal detail", "boom"):
        assert secret not in response.text
    logged = [r for r in caplog.records if r.name == "portico.web"]
    assert logged
    assert logged[-1].exc_info is not None  # the trace goes to the log instead


async def test_bad_input_is_400(portal):
    _register(portal.app)
    # A value with a space: random tokens on the page (CSP nonce, CSRF, asset hashes) can contain
    # any short run of letters ("abc" made this test flaky), never a space.
    response = await portal.client.get("/needs-a-number?n=not%20a%20number")
    _is_error_page(response, 400, "Something in that request was not right")
    assert "not a number" not in response.text


async def test_forbidden_is_the_expired_form_page(portal):
    response = await portal.client.post(portal.login_path, data={"email": "a@example.com"})
    _is_error_page(response, 403, "This form has expired")
