"""Kept portal pages (app.portal.page_cache): a repeat view is the page rendered last time, and
never once anything it shows, or the session behind it, has changed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from litestar import Litestar, Response, get
from litestar.testing import RequestFactory

from app.billing.tables import Customer, Invoice, Product, Subscription, SubscriptionItem
from app.configuration.tables import PortalConfiguration
from app.login.tables import WebSession
from app.portal import page_cache
from app.portal.page_cache import (
    ENTRY_OVERHEAD,
    MAX_AGE,
    MIN_AGE,
    Entry,
    Key,
    PageCache,
    Stamp,
)
from app.settings import Settings, SettingsError
from tests.helpers import HX, JENNY, SAM, csrf_token

BOTH = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])


def _cache(portal) -> PageCache:
    return portal.app.state.page_cache


async def _kept(portal, url: str = "/portal", headers: dict[str, str] | None = None):
    """View ``url`` until it comes from the cache; return that answer."""
    cache = _cache(portal)
    for _ in range(3):
        hits = cache.hits
        response = await portal.client.get(url, headers=headers or {})
        assert response.status_code == 200, response.text
        if cache.hits == hits + 1:
            return response
    raise AssertionError(f"{url} was never served from the cache")


async def _rendered(portal, url: str = "/portal", headers: dict[str, str] | None = None):
    """View ``url`` once and check it was rendered, not kept."""
    hits = _cache(portal).hits
    response = await portal.client.get(url, headers=headers or {})
    assert _cache(portal).hits == hits, "served from the cache"
    return response


async def _jenny() -> Customer:
    found = await Customer.objects().where(Customer.email == JENNY).first()
    assert found is not None
    return found


@BOTH
async def test_a_repeat_view_is_the_page_rendered_before(demo_portal, htmx):
    await demo_portal.sign_in(JENNY)
    headers = HX if htmx else {}
    rendered = await _rendered(demo_portal, "/portal", headers)
    kept = await _kept(demo_portal, "/portal", headers)
    assert kept.text == rendered.text
    assert kept.headers["content-type"] == "text/html; charset=utf-8"
    assert kept.headers["cache-control"] == "no-store"
    assert "HX-Request" in kept.headers["vary"]
    assert ("<html" in kept.text) is not htmx  # the page and its fragment are kept apart
    other = await _kept(demo_portal, "/portal", {} if htmx else HX)
    assert ("<html" in other.text) is htmx


async def test_the_invoice_history_and_its_pages_are_kept_apart(demo_portal):
    await demo_portal.sign_in(JENNY)
    first = await _kept(demo_portal, "/portal/invoices")
    assert (await _kept(demo_portal, "/portal/invoices/")).text == first.text  # one page
    second = await _kept(demo_portal, "/portal/invoices?page=2", HX)
    assert first.text != second.text
    assert "<html" not in second.text


async def test_a_kept_page_carries_this_browsers_csrf_token(demo_portal):
    await demo_portal.sign_in(JENNY)
    await _kept(demo_portal)
    # Another browser window without the CSRF cookie: a new token, in the page and the cookie.
    demo_portal.client.cookies.delete("csrftoken")
    kept = await _kept(demo_portal)
    cookie = re.search(r"csrftoken=([0-9a-f]+)", kept.headers["set-cookie"])
    assert cookie is not None
    tokens = set(re.findall(r"[0-9a-f]{128}", kept.text))
    assert tokens == {cookie.group(1)}
    assert csrf_token(kept.text) == cookie.group(1)
    assert page_cache.PageCache(1).placeholder.decode() not in kept.text
    # The kept page's form works: sign out with its token.
    out = await demo_portal.client.post(
        "/portal/sign-out", data={"_csrf_token": csrf_token(kept.text)}
    )
    assert out.status_code == 303


async def test_each_customer_gets_their_own_page(demo_portal):
    jenny = await demo_portal.sign_in(JENNY)
    jenny_page = await _kept(demo_portal)
    demo_portal.client.cookies.delete("portico_session")  # another browser: Jenny stays in
    sam = await demo_portal.sign_in(SAM)
    sam_page = await _kept(demo_portal)
    assert JENNY in jenny_page.text
    assert SAM not in jenny_page.text
    assert SAM in sam_page.text
    assert JENNY not in sam_page.text
    demo_portal.client.cookies.set("portico_session", jenny)
    assert JENNY in (await _kept(demo_portal)).text
    demo_portal.client.cookies.set("portico_session", sam)
    assert SAM in (await _kept(demo_portal)).text


async def _rename_jenny() -> str:
    await Customer.update({Customer.name: "Jenny Renamed"}).where(Customer.email == JENNY)
    return "Jenny Renamed"


async def _add_an_invoice() -> str:
    jenny = await _jenny()
    template = await Invoice.objects().where(Invoice.customer == jenny.id).first()
    assert template is not None
    await Invoice.insert(
        Invoice(
            id="in_cache_test",
            customer=jenny.id,
            number="CACHE-0001",
            status="open",
            currency=template.currency,
            total=4242,
            amount_due=4242,
            amount_paid=0,
            amount_remaining=4242,
            created=template.created + timedelta(days=400),
        )
    )
    return "CACHE-0001"


async def _rename_her_plan() -> str:
    jenny = await _jenny()
    sub = await Subscription.objects().where(Subscription.customer == jenny.id).first()
    assert sub is not None
    item = await SubscriptionItem.objects().where(SubscriptionItem.subscription == sub.id).first()
    assert item is not None
    price = await item.get_related(SubscriptionItem.price)
    await Product.update({Product.name: "Renamed Plan"}).where(Product.id == price.product)
    return "Renamed Plan"


async def _change_her_seats() -> str:
    jenny = await _jenny()
    sub = await Subscription.objects().where(Subscription.customer == jenny.id).first()
    assert sub is not None
    await SubscriptionItem.update({SubscriptionItem.quantity: 77}).where(
        SubscriptionItem.subscription == sub.id
    )
    return "\u00d7 77"


async def _rename_the_business() -> str:
    await PortalConfiguration.update({PortalConfiguration.business_name: "Renamed Business"}).where(
        PortalConfiguration.active.eq(True)
    )
    return "Renamed Business"


@pytest.mark.parametrize(
    "change",
    [_rename_jenny, _add_an_invoice, _rename_her_plan, _change_her_seats, _rename_the_business],
    ids=["customer", "invoice", "product", "subscription item", "configuration"],
)
async def test_a_change_by_any_writer_shows_at_once(demo_portal, change):
    # Written straight to the tables, as a webhook, a sync or another instance would.
    await demo_portal.sign_in(JENNY)
    before = await _kept(demo_portal)
    shown = await change()
    assert shown not in before.text
    after = await _rendered(demo_portal)
    assert shown in after.text
    assert (await _kept(demo_portal)).text == after.text


async def test_a_waiting_flash_message_is_shown_once(demo_portal):
    await demo_portal.sign_in(JENNY)
    await _kept(demo_portal)
    await WebSession.update(
        {WebSession.data: {"flash": [{"message": "Your card was saved.", "level": "success"}]}},
        force=True,
    )
    shown = await _rendered(demo_portal)
    assert "Your card was saved." in shown.text
    again = await demo_portal.client.get("/portal")
    assert "Your card was saved." not in again.text


async def test_a_page_with_a_billing_notice_is_neither_kept_nor_served(demo_portal, monkeypatch):
    from app.billing import health

    await demo_portal.sign_in(JENNY)
    quiet = await _kept(demo_portal)
    monkeypatch.setattr(health, "billing_notice", lambda request: "Billing is unreachable.")
    for _ in range(2):
        noisy = await _rendered(demo_portal)
        assert "Billing is unreachable." in noisy.text
    monkeypatch.undo()
    assert (await _kept(demo_portal)).text == quiet.text


async def test_signed_out_and_expired_sessions_never_get_a_kept_page(demo_portal, fake_clock):
    token = await demo_portal.sign_in(JENNY)
    kept = await _kept(demo_portal)
    out = await demo_portal.client.post(
        "/portal/sign-out", data={"_csrf_token": csrf_token(kept.text)}
    )
    assert out.status_code == 303
    demo_portal.client.cookies.set("portico_session", token)  # the old cookie, kept somewhere
    assert (await demo_portal.client.get("/portal")).status_code in (303, 401)

    demo_portal.client.cookies.delete("portico_session")
    fake_clock.advance(seconds=61)  # past the resend cooldown
    await demo_portal.sign_in(JENNY)
    await _kept(demo_portal)
    fake_clock.advance(minutes=31)  # idle past the 30 minutes
    response = await demo_portal.client.get("/portal")
    assert response.status_code == 303
    assert "reason=expired" in response.headers["location"]


async def test_a_kept_page_refreshes_the_sessions_last_use(demo_portal, fake_clock):
    await demo_portal.sign_in(JENNY)
    await _kept(demo_portal)
    fake_clock.advance(seconds=40)  # due for its refresh (every 30 s)
    await _kept(demo_portal)
    row = await WebSession.select(WebSession.last_seen_at).first()
    assert row is not None
    assert row["last_seen_at"] == fake_clock.current
    fake_clock.advance(minutes=25)  # 25 minutes after that refresh: still signed in
    assert (await demo_portal.client.get("/portal")).status_code == 200


async def test_a_page_is_kept_for_at_most_max_age(demo_portal, fake_clock):
    await demo_portal.sign_in(JENNY)
    await _kept(demo_portal)
    fake_clock.advance(seconds=MIN_AGE.total_seconds() - 1)
    await _kept(demo_portal)
    fake_clock.advance(seconds=(MAX_AGE - MIN_AGE).total_seconds() + 2)
    await _rendered(demo_portal)


async def test_the_cache_can_be_turned_off(demo_portal, monkeypatch):
    await demo_portal.sign_in(JENNY)
    monkeypatch.setitem(demo_portal.app.state, "page_cache", None)
    first = await demo_portal.client.get("/portal")
    second = await demo_portal.client.get("/portal")
    assert first.status_code == second.status_code == 200


@pytest.mark.parametrize(
    ("value", "ok"), [("0", True), ("32", True), ("-1", False), ("99999", False)]
)
def test_the_cache_size_setting(value, ok):
    environ = {"PORTICO_PAGE_CACHE_MB": value}
    if ok:
        settings = Settings.from_env(environ)
        assert settings.page_cache_mb == int(value)
        assert (page_cache.from_settings(settings) is None) is (value == "0")
    else:
        with pytest.raises(SettingsError, match="PORTICO_PAGE_CACHE_MB"):
            Settings.from_env(environ)


# -- the cache itself --------------------------------------------------------------------------
def _key(n: int) -> Key:
    return Key("cus_1", "bpc_1", f"/p{n}", b"", False)


def _entry(size: int, stamp: Stamp = Stamp(1, 1)) -> Entry:
    from app import clock

    return Entry(stamp, clock.now() + MAX_AGE, b"x" * size, (), ())


def test_least_recently_used_pages_go_first_within_the_budget():
    cache = PageCache(3 * (1000 + ENTRY_OVERHEAD))
    for n in range(3):
        cache.put(_key(n), _entry(1000))
    assert cache.get(_key(0), Stamp(1, 1)) is not None  # now the most recent
    cache.put(_key(3), _entry(1000))
    assert cache.get(_key(1), Stamp(1, 1)) is None  # the least recently used went
    assert {n for n in range(4) if cache.get(_key(n), Stamp(1, 1))} == {0, 2, 3}
    assert cache.size == 3 * (1000 + ENTRY_OVERHEAD)
    cache.put(_key(0), _entry(10))  # replacing an entry counts only the new one
    assert cache.size == 2 * (1000 + ENTRY_OVERHEAD) + 10 + ENTRY_OVERHEAD
    cache.put(_key(9), _entry(10 * 1000 * 1000))  # bigger than the whole budget: not kept
    assert cache.get(_key(9), Stamp(1, 1)) is None
    assert len(cache) == 3


def test_a_page_is_only_served_under_the_counters_it_was_kept_with():
    cache = PageCache(1 << 20)
    cache.put(_key(0), _entry(10, Stamp(5, 2)))
    assert cache.get(_key(0), Stamp(5, 2)) is not None
    assert cache.get(_key(0), Stamp(6, 2)) is None
    assert cache.get(_key(0), Stamp(5, 3)) is None


def test_a_page_holding_a_form_intent_is_sent_but_not_kept():
    @get("/")
    async def handler() -> None:
        return None

    app = Litestar([handler])
    request = RequestFactory(app=app).get("/")
    cache = PageCache(1 << 20)
    token = "ab" * 64
    for body, kept in (
        (f'<form><input type="hidden" name="intent" value="x">{token}</form>', False),
        (f"<p>{token}</p>", True),
    ):
        ticket = page_cache.Ticket(cache, _key(len(body)), Stamp(1, 1), token)
        sent = page_cache.keep(request, ticket, Response(content=body, media_type="text/html"))
        assert sent.content == body.encode()
        assert (cache.get(ticket.key, Stamp(1, 1)) is not None) is kept


async def test_a_database_outage_on_a_kept_page_is_the_503_page(demo_portal, monkeypatch):
    # Stands in for the outage (a refused connection) at the one query a kept page makes; the
    # real database restart is tests/faults/test_database_restart.py.
    from app import db

    await demo_portal.sign_in(JENNY)
    await _kept(demo_portal)

    async def refused(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(db, "fetch", refused)
    response = await demo_portal.client.get("/portal")
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert "Traceback" not in response.text
