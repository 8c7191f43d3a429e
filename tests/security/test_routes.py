"""Every page and every form of the app, enumerated from ``app.routes`` with a signed-in customer
and merchant (tests/security/world.py):

- every GET answers with the security headers (HTML: ``Cache-Control: no-store``), never a 5xx,
  and changes nothing;
- every POST refuses a body over 1 MiB with 413;
- every text field of every form refuses an over-long value with 422 and a message for that field.

The header values themselves are checked in tests/web/test_security.py (whose checker this file
reuses); the login page's 413 in ``test_a_body_over_one_mebibyte_is_refused`` there.
"""

from __future__ import annotations

import httpx
from litestar.routes import HTTPRoute

from app.audit.tables import AuditEvent
from app.billing.tables import (
    Customer,
    Invoice,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
    TaxId,
)
from app.configuration.tables import PortalConfiguration
from app.factory import MAX_BODY_BYTES
from app.login.tables import LoginAttempt
from app.mail.tables import OutboxMessage
from app.piccolo_app import APP_CONFIG
from tests.helpers import HX, csrf_token
from tests.web.test_security import EXEMPT, _assert_security_headers

from .world import OBJECT_TABLES, Form, post_forms, route_of, routes

# POST routes whose forms carry no text input (buttons and hidden fields only), or that are
# not forms at all. A route missing from here must have a form on some page of the world.
NO_TEXT_FIELDS = {
    "login:resend",
    "portal:sign_out",
    "details:remove_tax_id",
    "invoices:pay",
    "payment_methods:make_default",
    "payment_methods:remove",
    "portal:subscription_offer",
    "portal:subscription_renew",
    "portal:subscription_resume",
    "merchant:sign_out",
    "merchant:login_link_activate",
    "merchant:login_link_deactivate",
    "merchant:login_link_rotate",
    "merchant:configurations_make_default",
    "merchant:stripe_sync",
    "stripe_webhook",
}
# Billing data that is not a page (an invoice PDF, the activity CSV): not cached either.
PRIVATE_DOWNLOADS = {"application/pdf", "text/csv"}
# Steps that only show the next step (a preview, a review): submitted as they stand so that the
# forms of the next step are checked too.
STEPS = {"portal:subscription_preview", "portal:subscription_cancel_review"}
# Hidden fields that are not data: the CSRF token, the one-time intent (checked elsewhere).
NOT_DATA = {"_csrf_token", "intent"}
LONG = "a" * 1001  # over every limit (forms.MAX_FIELD is 1000 characters)


async def _snapshot() -> list:
    """What a GET must never change."""
    tables = (AuditEvent, Customer, Subscription, Invoice, PaymentMethod, TaxId, OutboxMessage)
    state: list = [await table.select().order_by(table._meta.primary_key) for table in tables]
    state.append(await PortalConfiguration.select().order_by(PortalConfiguration.id))
    state.append(await LoginAttempt.count())
    return state


async def test_every_page_has_the_security_headers_and_changes_nothing(route_world):
    w = route_world
    before = await _snapshot()
    html_pages = 0
    for htmx in (False, True):
        for url, response in (await w.get_all(htmx=htmx)).items():
            where = (url, htmx, response.status_code)
            assert response.status_code < 500, where
            _assert_security_headers(response)
            kind = response.headers.get("content-type", "")
            if kind.startswith("text/html"):
                assert response.headers["cache-control"] == "no-store", where
                html_pages += response.status_code == 200
            elif kind.split(";")[0] in PRIVATE_DOWNLOADS and response.status_code == 200:
                assert "no-store" in response.headers.get("cache-control", ""), where
    assert html_pages >= 40  # the pages really rendered (not only error pages)
    assert await _snapshot() == before


def _body_limits(app) -> dict[str, int]:
    """Each POST route's body limit: 1 MiB, or its own (the branding upload allows more so its
    form can explain the 512 KB image rule)."""
    from litestar.routes import HTTPRoute

    limits = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if "POST" in handler.http_methods:
                    own = handler.resolve_request_max_body_size()
                    limits[route.path_format] = own or MAX_BODY_BYTES
    return limits


async def test_every_post_refuses_a_body_over_one_mebibyte(route_world):
    w = route_world
    token = await w.csrf()
    limits = _body_limits(w.app)
    assert sorted(limit for limit in limits.values() if limit != MAX_BODY_BYTES) == [
        8 * 1024 * 1024,
        8 * 1024 * 1024,
    ]  # only the two branding routes differ
    form = {"content-type": "application/x-www-form-urlencoded"}
    for route in routes(w.app, "POST"):
        url = w.url(route)
        too_big = b"x=" + b"a" * limits[route.path]
        # The token inside the body (the CSRF check reads the body) and in a header (the
        # handler reads it).
        in_body = await w.client.post(
            url, content=f"_csrf_token={token}&".encode() + too_big, headers=form
        )
        in_header = await w.client.post(
            url, content=too_big, headers={**form, **HX, "x-csrftoken": token}
        )
        assert in_body.status_code == 413, url
        # Refused before the handler runs, even one that never reads its body
        # (app.factory.refuse_large_bodies).
        assert in_header.status_code == 413, url

    async def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"a" * 65536

    # Without a Content-Length (chunked): counted as it arrives.
    streamed = await w.client.post(
        "/portal/details", content=chunks(), headers={**form, "x-csrftoken": token}
    )
    assert streamed.status_code == 413


async def test_every_post_needs_the_csrf_token_when_signed_in(route_world):
    """tests/web/test_security.py checks every POST signed out; here with a customer and a
    merchant session and real ids, so each request would otherwise reach its handler."""
    w = route_world
    before = await _snapshot()
    token = await w.csrf()
    elsewhere = csrf_token((await w.anonymous.get("/signed-out")).text)  # another browser's
    data = {"intent": "i" * 22, "email": "jenny.rosen@example.com", "name": "Mallory"}
    posts = [r for r in routes(w.app, "POST") if r.path not in EXEMPT]
    assert len(posts) >= 25
    for route in posts:
        url = w.url(route)
        for headers in ({}, HX):
            for extra in ({}, {"_csrf_token": token[:-4] + "beef"}, {"_csrf_token": elsewhere}):
                response = await w.client.post(url, data={**data, **extra}, headers=headers)
                assert response.status_code == 403, (url, headers, extra.keys())
            as_header = await w.client.post(
                url, data=data, headers={**headers, "x-csrftoken": elsewhere}
            )
            assert as_header.status_code == 403, url
    assert await _snapshot() == before
    assert (await w.client.get("/portal")).status_code == 200  # both sessions still there
    assert (await w.client.get("/merchant/customers")).status_code == 200


async def test_only_get_routes_skip_the_csrf_check(route_world):
    """Besides the Stripe webhook (tests/web/test_security.py::test_only_the_stripe_webhook_is_
    exempt), a handler may opt out of the CSRF check only if it cannot change anything."""
    for route in route_world.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.opt.get("exclude_from_csrf"):
                assert handler.http_methods <= {"GET", "HEAD", "OPTIONS"}, route.path


async def _objects_of_others(w) -> list:
    rows = []
    for name, table in OBJECT_TABLES.items():
        rows.append(await table.select().where(table.id == w.others[name]))
    rows.append(
        await SubscriptionItem.select().where(
            SubscriptionItem.subscription == w.others["subscription_id"]
        )
    )
    rows.append(await AuditEvent.count())
    return rows


async def test_another_customers_objects_are_not_found(route_world):
    """Every route with an object id in its path, GET and POST, with and without htmx, given
    another customer's object: 404, and nothing changes. (Per object type, with the flows
    around it: the IDOR tests in tests/portal/*/test_controller.py.)"""
    w = route_world
    before = await _objects_of_others(w)
    token = await w.csrf()
    data = {
        "_csrf_token": token,
        "intent": "o" * 22,
        "quantity": "1",
        "reason": "other",
        "comment": "",
        "mode": "indefinitely",
        "resume_on": "",
    }
    tried = set()
    for method in ("GET", "POST"):
        for route in routes(w.app, method):
            objects = [p for p in route.params if p in OBJECT_TABLES]
            unknown = set(route.params) - set(w.params)
            assert not unknown, f"{route.path}: add {unknown} to World.params / OBJECT_TABLES"
            for name in objects:
                url = w.url(route, **{name: w.others[name]})
                for headers in ({}, HX):
                    if method == "GET":
                        response = await w.client.get(url, headers=headers)
                    else:
                        response = await w.client.post(url, data=data, headers=headers)
                    assert response.status_code == 404, (method, url, headers)
                tried.add(name)
                if method == "GET":  # the same page with her own object is there
                    assert (await w.client.get(w.url(route))).status_code != 404, route.path
    assert tried == set(OBJECT_TABLES)
    assert await _objects_of_others(w) == before


async def _stored(value: str) -> bool:
    """Whether ``value`` is in any row of any table."""
    for table in APP_CONFIG.table_classes:
        for row in await table.select():
            if any(value in str(v) for v in row.values()):
                return True
    return False


def _error_for(response: httpx.Response, name: str, control_id: str) -> bool:
    text = response.text
    return any(
        marker in text
        for marker in (f'id="{name}-error"', f'href="#{name}"', f'href="#{control_id}"')
    )


async def _next_steps(client: httpx.AsyncClient, form: Form) -> dict[str, Form]:
    """The forms of the step after ``form``: submitted as it stands and with each other choice of
    its radio groups (a preview needs a plan other than the current one)."""
    choices = [form.values()]
    for control in form.controls:
        if control.type == "radio" and control.name:
            choices.append(form.values(**{control.name: control.value}))
    found: dict[str, Form] = {}
    for data in choices[:8]:
        response = await client.post(form.action, data=data)
        if response.status_code == 200:
            for action, step in post_forms([response.text]).items():
                found.setdefault(action, step)
    return found


async def _all_forms(w) -> dict[str, tuple[httpx.AsyncClient, Form]]:
    """Every POST form on every page, by action, with the browser that saw it (a form on a
    signed-out page is submitted signed out), and the forms of the steps after them."""
    login_page = w.url(route_of(w.app, "/p/login/x", "GET"))
    signed_out = [(await w.anonymous.get(url)).text for url in ("/merchant/sign-in", login_page)]
    signed_in = [response.text for response in (await w.get_all()).values()]
    forms = {action: (w.anonymous, form) for action, form in post_forms(signed_out).items()}
    for action, form in post_forms(signed_in).items():
        forms.setdefault(action, (w.client, form))
    for client, form in list(forms.values()):
        route = route_of(w.app, form.action)
        if route is not None and route.name in STEPS:
            for action, step in (await _next_steps(client, form)).items():
                forms.setdefault(action, (client, step))
    return forms


async def test_every_text_field_refuses_an_over_long_value(route_world):
    w = route_world
    seen: set[str] = set()
    checked = 0
    ignored: list[tuple[str, str]] = []
    for client, form in (await _all_forms(w)).values():
        route = route_of(w.app, form.action)
        assert route is not None, f"a form posts to {form.action}, which has no route"
        seen.add(route.name)
        fields = [c for c in form.controls if c.is_text and c.name]
        hidden = [c for c in form.controls if c.type == "hidden" and c.name not in NOT_DATA]
        if route.name in NO_TEXT_FIELDS:
            assert not fields, f"{route.name} has text fields: remove it from NO_TEXT_FIELDS"
        for control in fields + hidden:
            data = form.values(**{control.name: LONG})
            response = await client.post(form.action, data=data, files=form.files() or None)
            where = (route.name, control.name, response.status_code)
            checked += 1
            if response.status_code == 422:
                if control in fields:  # a visible field has its own message
                    assert _error_for(response, control.name, control.id), where
                continue
            # Otherwise the handler did not use the value (e.g. the limits of a feature that is
            # switched off): it must not have kept it anywhere.
            assert response.status_code in (200, 303), where
            assert not await _stored(LONG), where
            ignored.append(where)
    missing = {r.name for r in routes(w.app, "POST")} - seen - NO_TEXT_FIELDS
    assert not missing, f"no form found for {missing}: show it in the world or classify it"
    assert checked >= 30
    assert len(ignored) <= checked // 4, ignored  # most fields are checked, not ignored
