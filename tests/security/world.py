"""A signed-in world for the tests that enumerate the app's routes.

One browser holds a customer session (Jenny, of the demo merchant, signed in with a real passcode)
and a merchant session; every route's path parameters are filled with real ids, so each GET
renders its page and each POST reaches its handler. Routes come from ``app.routes``: a new route
is covered without editing these tests, and a new kind of path parameter fails them until it is
added to ``World.params``.

Also here: an HTML form reader (so the tests can submit every form the app shows, the way a
browser would) and the check that a page renders injected markup inert.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute

from app.billing.tables import Customer, Invoice, PaymentMethod, Subscription, TaxId
from app.configuration.tables import BrandAsset
from tests.helpers import BASE_URL, HX, JENNY, PAT, Portal, csrf_token
from tests.merchant.support import EMAIL, PASSWORD
from tests.portal.support import set_features

# Path parameters that name a customer's object: the IDOR rule covers every route that has one.
OBJECT_TABLES = {
    "subscription_id": Subscription,
    "invoice_id": Invoice,
    "payment_method_id": PaymentMethod,
    "tax_id": TaxId,
}
# Not a form: the Stripe webhook (signed, CSRF-exempt; 404 outside Stripe mode).
WEBHOOK = "/webhooks/stripe"


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # path_format, e.g. /portal/invoices/{invoice_id}
    params: tuple[str, ...]
    methods: frozenset[str]


def routes(app: Litestar, method: str) -> list[Route]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if method in handler.http_methods:
                found.append(
                    Route(
                        name=handler.name or handler.handler_name,
                        path=route.path_format,
                        params=tuple(route.path_parameters),
                        methods=frozenset(handler.http_methods),
                    )
                )
    return sorted(found, key=lambda r: r.path)


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}: add it to World.params"
    return path


@dataclass
class World:
    portal: Portal
    customer: Customer
    params: dict[str, str]  # every path parameter → a value of Jenny's / this merchant's
    others: dict[str, str]  # object parameter → another customer's object of that kind
    anonymous: httpx.AsyncClient = field(repr=False)

    @property
    def app(self) -> Litestar:
        return self.portal.app

    @property
    def client(self) -> httpx.AsyncClient:
        return self.portal.client

    async def csrf(self) -> str:
        return csrf_token((await self.client.get("/portal")).text)

    def url(self, route: Route, **overrides: str) -> str:
        return fill(route.path, {**self.params, **overrides})

    async def get_all(self, *, htmx: bool = False) -> dict[str, httpx.Response]:
        """Every GET route, signed in (and the sign-in pages, signed out)."""
        pages = {}
        for route in routes(self.app, "GET"):
            url = self.url(route)
            client = self.anonymous if route.name == "merchant:sign_in" else self.client
            pages[url] = await client.get(url, headers=HX if htmx else {})
        return pages


async def _first(table, *where) -> dict[str, Any]:
    query = table.select()
    for condition in where:
        query = query.where(condition)
    row = await query.first()
    assert row is not None, table
    return row


async def _jennys_objects(customer: Customer) -> dict[str, str]:
    subscription = await _first(
        Subscription, Subscription.customer == customer.id, Subscription.status == "active"
    )
    invoice = await (
        Invoice.select(Invoice.id)
        .where((Invoice.customer == customer.id) & (Invoice.status != "draft"))
        .order_by(Invoice.status)  # "open" before "paid"
        .first()
    )
    card = customer.invoice_settings_default_payment_method
    tax_id = await TaxId.select(TaxId.id).where(TaxId.customer == customer.id).first()
    if tax_id is None:
        await TaxId.insert(
            TaxId(
                id="txi_security_jenny",
                customer=customer.id,
                type="eu_vat",
                value="DE123456789",
                country="DE",
            )
        )
        tax_id = {"id": "txi_security_jenny"}
    assert invoice is not None
    assert card
    return {
        "subscription_id": subscription["id"],
        "invoice_id": invoice["id"],
        "payment_method_id": card,
        "tax_id": tax_id["id"],
    }


async def _someone_elses(customer: Customer) -> dict[str, str]:
    others = {}
    for name, table in OBJECT_TABLES.items():
        conditions = [table.customer != customer.id]
        if table is Invoice:
            conditions.append(Invoice.status == "open")
        row = await _first(table, *conditions)
        others[name] = row["id"]
    return others


async def sign_in_merchant(portal: Portal, client: httpx.AsyncClient | None = None) -> None:
    client = client or portal.client
    page = await client.get("/merchant/sign-in")
    response = await client.post(
        "/merchant/sign-in",
        data={"email": EMAIL, "password": PASSWORD, "_csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 303, response.text


@asynccontextmanager
async def world(portal: Portal, summary) -> AsyncIterator[World]:
    """Jenny and the merchant (the ``account`` fixture) signed in, in one browser, with every
    portal feature switched on (so every form is on some page); a fresh passcode attempt (Pat's)
    for the code page."""
    await set_features(
        summary,
        customer_update={"allowed_updates": ["name", "address", "phone", "shipping", "tax_id"]},
        subscription_pause={"enabled": True},
    )
    await portal.sign_in(JENNY)
    await portal.request_code(PAT)
    attempt_id = await portal.latest_attempt(PAT)
    await sign_in_merchant(portal)
    customer = await Customer.objects().where(Customer.email == JENNY).first()
    assert customer is not None
    asset = await BrandAsset.select(BrandAsset.id).first()
    params = {
        "token": summary.login_path.rsplit("/", 1)[1],
        "attempt_id": attempt_id,
        "configuration_id": summary.configuration_id,
        "asset_id": asset["id"] if asset else "none",
        "file_path": "css/portico.css",
        **await _jennys_objects(customer),
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal.app), base_url=BASE_URL
    ) as anonymous:
        yield World(portal, customer, params, await _someone_elses(customer), anonymous)


# --- forms -------------------------------------------------------------------------------------

TEXT_TYPES = {"text", "email", "url", "search", "tel", "password", "number", "date", "color"}


@dataclass
class Control:
    tag: str
    type: str
    name: str
    id: str
    value: str
    checked: bool = False
    readonly: bool = False
    disabled: bool = False  # not submitted at all
    formaction: str = ""  # a submit button that posts the form elsewhere
    options: list[tuple[str, bool]] = field(default_factory=list)  # select: (value, selected)

    @property
    def is_text(self) -> bool:
        if self.readonly or self.disabled:
            return False
        return self.tag == "textarea" or (self.tag == "input" and self.type in TEXT_TYPES)


@dataclass
class Form:
    action: str
    method: str
    enctype: str
    controls: list[Control] = field(default_factory=list)

    def values(self, **overrides: str) -> dict[str, str | list[str]]:
        """What a browser submits as the page stands (checked boxes, the checked or first radio
        of each group, the selected or first option), with ``overrides``."""
        data: dict[str, list[str]] = {}
        radios_checked: set[str] = set()
        for control in self.controls:
            skipped = control.tag == "button" or control.type in ("submit", "file")
            if not control.name or skipped or control.disabled:
                continue
            name = control.name
            if control.type == "checkbox":
                if control.checked:
                    data.setdefault(name, []).append(control.value or "on")
            elif control.type == "radio":
                if control.checked and name not in radios_checked:
                    data[name] = [control.value]
                    radios_checked.add(name)
                elif name not in data:
                    data[name] = [control.value]
            elif control.tag == "select":
                chosen = [v for v, selected in control.options if selected]
                data[name] = chosen or [v for v, _ in control.options[:1]]
            else:
                data.setdefault(name, []).append(control.value)
        for name, value in overrides.items():
            data[name] = [value]
        return {name: v[0] if len(v) == 1 else v for name, v in data.items() if v}

    def files(self) -> dict[str, tuple[str, bytes, str]]:
        """Unchosen file inputs, sent as browsers do (an empty part)."""
        return {
            c.name: ("", b"", "application/octet-stream")
            for c in self.controls
            if c.type == "file" and c.name
        }


class FormReader(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._text: Control | None = None  # the textarea being read
        self._select: Control | None = None
        self._option: tuple[str, bool] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(
                action=a.get("action", ""),
                method=a.get("method", "get").lower(),
                enctype=a.get("enctype", ""),
            )
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        if tag in ("input", "button", "textarea", "select"):
            default_type = {"input": "text", "button": "submit"}.get(tag, tag)
            control = Control(
                tag=tag,
                type=a.get("type", default_type).lower(),
                name=a.get("name", ""),
                id=a.get("id", ""),
                value=a.get("value", ""),
                checked="checked" in a,
                readonly="readonly" in a,
                disabled="disabled" in a,
                formaction=a.get("formaction", ""),
            )
            self._form.controls.append(control)
            if tag == "textarea":
                self._text = control
            elif tag == "select":
                self._select = control
        elif tag == "option" and self._select is not None:
            value = a.get("value")
            self._select.options.append((value if value is not None else "", "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            if self._text is not None:
                self._text.value = self._text.value.removeprefix("\n")
            self._text = None
        elif tag == "select":
            self._select = None


def post_forms(pages: Iterable[str]) -> dict[str, Form]:
    """Every POST form on these pages, by action (the first seen wins); a submit button with a
    ``formaction`` counts as a form of its own."""
    found: dict[str, Form] = {}
    for html in pages:
        for form in FormReader(html).forms:
            if form.method != "post":
                continue
            actions = [form.action] + [c.formaction for c in form.controls if c.formaction]
            for action in actions:
                if action and action not in found:
                    found[action] = Form(action, form.method, form.enctype, form.controls)
    return found


def route_of(app: Litestar, path: str, method: str = "POST") -> Route | None:
    """The route that serves ``path`` (literal segments win over parameters)."""
    parts = path.split("?")[0].split("/")
    candidates = [
        route
        for route in routes(app, method)
        if len(route.path.split("/")) == len(parts)
        and all(
            t == p or t.startswith("{") for t, p in zip(route.path.split("/"), parts, strict=True)
        )
    ]
    return min(candidates, key=lambda r: len(r.params), default=None)


# --- inert markup ------------------------------------------------------------------------------


class Elements(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str, where: str) -> None:
    """No markup an attacker could have brought in runs: no inline or foreign script, no event
    handler attribute, no injected image/svg/iframe, no javascript: URL."""
    for tag, attrs in Elements(html).tags:
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"{where}: <{tag} {handlers}>"
        assert tag not in ("svg", "iframe", "object", "embed"), f"{where}: <{tag}>"
        if tag == "script":
            assert attrs.get("src"), f"{where}: an inline <script>"
        if tag == "img":
            assert attrs.get("src") != "x", f"{where}: an injected <img>"
        for name in ("href", "src", "action", "formaction"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith("javascript:"), f"{where}: {name}={value}"
