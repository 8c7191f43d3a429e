"""Payment method pages, with and without htmx: list, add, make default, remove."""

from __future__ import annotations

import json
import re

import pytest

from app.billing.gateway import AddPaymentMethodStart
from app.billing.tables import Customer, PaymentMethod
from tests.helpers import JENNY, MAX, PAT, without_html
from tests.portal.support import (
    audit_events,
    customer_by_email,
    intents_on,
    set_features,
    signed_in,
    success_target,
)

CARD = {
    "number": "4242 4242 4242 4242",
    "expiry": "12 / 34",
    "cvc": "123",
    "name": "Jenny R",
    "make_default": "1",
}
DECLINED = {**CARD, "number": "4000 0000 0000 0002"}


async def cards_of(customer_id: str) -> list[dict]:
    return await PaymentMethod.select().where(PaymentMethod.customer == customer_id)


async def add_card(client, data: dict[str, str], *, htmx: bool = False, intent: str | None = None):
    page = await client.get("/portal/payment-methods/new")
    intent = intent or intents_on(page.text)[0]
    return await client.post("/portal/payment-methods", {**data, "intent": intent}, htmx=htmx)


async def test_list_page_full_and_fragment(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        full = await jenny.get("/portal/payment-methods")
        assert full.status_code == 200
        assert "<!doctype html>" in full.text.lower()
        assert full.headers["vary"] == "HX-Request"
        assert "Visa ending in 4242" in full.text
        assert ">Default<" in full.text
        assert "Add payment method" in full.text
        assert 'aria-current="page"' in full.text
        fragment = await jenny.get("/portal/payment-methods", htmx=True)
        assert fragment.status_code == 200
        assert without_html(fragment.text)
        assert "Visa ending in 4242" in fragment.text
        # The only card of a customer with an active plan has no Make default (it is the default).
        assert "Make default" not in full.text
        assert 'href="/portal/payment-methods/' in full.text


async def test_add_form_fields(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        page = await jenny.get("/portal/payment-methods/new")
        assert page.status_code == 200
        html = page.text
        for label in (
            "Card number",
            "Expiry",
            "CVC",
            "Name on card",
            "Use as default payment method",
        ):
            assert f">{label}</label>" in html
        assert re.search(r'id="number"[^>]*autocomplete="cc-number"[^>]*inputmode="numeric"', html)
        assert 'autocomplete="cc-exp"' in html
        assert 'autocomplete="cc-csc"' in html
        assert 'autocomplete="cc-name"' in html
        assert re.search(r'name="make_default" value="1" checked', html)
        assert "https://acme.example.com/legal/terms" in html
        assert "By adding a card you agree" in html
        assert len(intents_on(html)) == 1
        fragment = await jenny.get("/portal/payment-methods/new", htmx=True)
        assert without_html(fragment.text)
        assert "Card number" in fragment.text


@pytest.mark.parametrize("htmx", [False, True])
async def test_add_card(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        response = await add_card(max_, CARD, htmx=htmx)
        assert success_target(response, htmx) == "/portal/payment-methods"
        cards = await cards_of(max_.customer.id)
        assert [(c["card_brand"], c["card_last4"]) for c in cards] == [("visa", "4242")]
        customer = await max_.reload()
        assert customer.invoice_settings_default_payment_method == cards[0]["id"]
        events = await audit_events("payment_method.added")
        assert len(events) == 1
        assert events[0]["object_id"] == cards[0]["id"]
        assert events[0]["actor_id"] == max_.customer.id
        assert "4242424242424242" not in json.dumps(events[0], default=str)
        page = await max_.get("/portal/payment-methods")
        assert "Your card was added." in page.text
        assert "Visa ending in 4242" in page.text


async def test_add_card_without_default(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        before = jenny.customer.invoice_settings_default_payment_method
        data = {**CARD, "number": "5555 5555 5555 4444", "make_default": ""}  # box unticked
        response = await add_card(jenny, data)
        assert response.status_code == 303
        assert (await jenny.reload()).invoice_settings_default_payment_method == before
        page = await jenny.get("/portal/payment-methods")
        assert "Mastercard ending in 4444" in page.text
        assert "Make default" in page.text


@pytest.mark.parametrize("htmx", [False, True])
async def test_declined_card(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        response = await add_card(max_, {**DECLINED, "make_default": "1"}, htmx=htmx)
        assert response.status_code == 422
        html = response.text
        assert "Your card was declined." in html
        assert re.search(r'id="number-error"[^>]*>.*Your card was declined\.', html)
        assert "There is a problem" in html
        assert "4000 0000 0000 0002" not in html
        assert "4000000000000002" not in html
        assert 'value="123"' not in html  # the CVC
        assert 'value="Jenny R"' in html  # the name is kept
        assert 'value="12 / 34"' in html
        assert await cards_of(max_.customer.id) == []
        assert await audit_events("payment_method.added") == []
        assert without_html(html) is htmx


async def test_invalid_input_is_not_echoed(settings, demo) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        response = await add_card(
            max_, {"number": "4242 4242 4242 4241", "expiry": "13/99", "cvc": "98765"}
        )
        assert response.status_code == 422
        assert "<title>Error:" in response.text
        assert "4242 4242 4242 4241" not in response.text
        assert "98765" not in response.text
        assert 'href="#number"' in response.text
        assert 'href="#expiry"' in response.text
        assert await cards_of(max_.customer.id) == []


async def test_double_submit_adds_one_card(settings, demo) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        page = await max_.get("/portal/payment-methods/new")
        intent = intents_on(page.text)[0]
        first = await add_card(max_, CARD, intent=intent)
        second = await add_card(max_, CARD, intent=intent, htmx=True)
        assert first.status_code == 303
        assert second.status_code == 200
        assert "HX-Location" in second.headers
        assert len(await cards_of(max_.customer.id)) == 1
        assert len(await audit_events("payment_method.added")) == 1


async def test_missing_intent_and_csrf(settings, demo) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        no_intent = await max_.post("/portal/payment-methods", CARD)
        assert no_intent.status_code == 422
        page = await max_.get("/portal/payment-methods/new")
        no_csrf = await max_.post(
            "/portal/payment-methods", {**CARD, "intent": intents_on(page.text)[0]}, csrf=False
        )
        assert no_csrf.status_code == 403
        assert await cards_of(max_.customer.id) == []


async def test_start_redirects_to_the_providers_page(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        gateway = jenny.app.state.gateway
        calls = []

        async def start(customer_id, **kwargs):
            calls.append((customer_id, kwargs))
            return AddPaymentMethodStart(redirect_url="https://checkout.stripe.test/c/pay/cs_1")

        gateway.start_add_payment_method = start
        response = await jenny.get("/portal/payment-methods/new")
        assert response.status_code == 303
        assert response.headers["location"] == "https://checkout.stripe.test/c/pay/cs_1"
        htmx = await jenny.get("/portal/payment-methods/new", htmx=True)
        assert htmx.headers["HX-Redirect"] == "https://checkout.stripe.test/c/pay/cs_1"
        assert calls[0][0] == jenny.customer.id
        assert calls[0][1]["cancel_url"] == "http://portal.test/portal/payment-methods"
        assert calls[0][1]["idempotency_key"] != calls[1][1]["idempotency_key"]


async def _add_second_card(client) -> str:
    response = await add_card(client, {**CARD, "number": "5555 5555 5555 4444", "make_default": ""})
    assert response.status_code == 303
    rows = await PaymentMethod.select(PaymentMethod.id).where(
        (PaymentMethod.customer == client.customer.id) & (PaymentMethod.card_last4 == "4444")
    )
    return rows[0]["id"]


@pytest.mark.parametrize("htmx", [False, True])
async def test_make_default(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        old = jenny.customer.invoice_settings_default_payment_method
        new = await _add_second_card(jenny)
        page = await jenny.get("/portal/payment-methods")
        assert f'action="/portal/payment-methods/{new}/default"' in page.text
        assert f'hx-post="/portal/payment-methods/{new}/default"' in page.text
        intent = intents_on(page.text)[0]
        response = await jenny.post(
            f"/portal/payment-methods/{new}/default", {"intent": intent}, htmx=htmx
        )
        assert success_target(response, htmx) == "/portal/payment-methods"
        assert (await jenny.reload()).invoice_settings_default_payment_method == new
        again = await jenny.post(f"/portal/payment-methods/{new}/default", {"intent": intent})
        assert again.status_code == 303
        events = await audit_events("payment_method.default_set")
        assert len(events) == 1
        assert events[0]["before"] == {"default_payment_method": old}
        assert events[0]["after"]["default_payment_method"] == new
        assert events[0]["after"]["idempotency_key"]
        done = await jenny.get("/portal/payment-methods")
        assert "Mastercard ending in 4444 is now your default payment method." in done.text


async def test_make_default_of_someone_elses_card_is_404(settings, demo) -> None:
    pat = await customer_by_email(PAT)
    async with signed_in(settings, demo, JENNY) as jenny:
        before = jenny.customer.invoice_settings_default_payment_method
        for htmx in (False, True):
            response = await jenny.post(
                f"/portal/payment-methods/{pat.invoice_settings_default_payment_method}/default",
                {"intent": "x" * 22},
                htmx=htmx,
            )
            assert response.status_code == 404
        assert (await jenny.reload()).invoice_settings_default_payment_method == before
        assert await audit_events("payment_method.default_set") == []


async def test_remove_the_last_card_with_an_active_plan_is_refused(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        card = jenny.customer.invoice_settings_default_payment_method
        page = await jenny.get(f"/portal/payment-methods/{card}/remove")
        assert page.status_code == 200
        assert "You need at least one payment method while you have an active subscription." in (
            page.text
        )
        assert f'action="/portal/payment-methods/{card}/remove"' not in page.text
        assert ">Remove</button>" not in page.text
        response = await jenny.post(f"/portal/payment-methods/{card}/remove", {"intent": "y" * 22})
        assert response.status_code == 422
        assert "Add another card first." in response.text
        assert len(await cards_of(jenny.customer.id)) == 1
        assert await audit_events("payment_method.removed") == []


@pytest.mark.parametrize("htmx", [False, True])
async def test_remove_after_confirming(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        second = await _add_second_card(jenny)
        confirm = await jenny.get(f"/portal/payment-methods/{second}/remove", htmx=htmx)
        assert confirm.status_code == 200
        assert "Remove Mastercard ending in 4444?" in confirm.text
        assert ">Remove</button>" in confirm.text
        intent = intents_on(confirm.text)[0]
        response = await jenny.post(
            f"/portal/payment-methods/{second}/remove", {"intent": intent}, htmx=htmx
        )
        assert success_target(response, htmx) == "/portal/payment-methods"
        assert [c["card_last4"] for c in await cards_of(jenny.customer.id)] == ["4242"]
        # The same form again (a double click): the same answer, nothing more changes.
        again = await jenny.post(f"/portal/payment-methods/{second}/remove", {"intent": intent})
        assert again.status_code == 303
        events = await audit_events("payment_method.removed")
        assert len(events) == 1
        assert events[0]["object_id"] == second
        page = await jenny.get("/portal/payment-methods")
        assert "Mastercard ending in 4444 was removed." in page.text


async def test_remove_someone_elses_card_is_404(settings, demo) -> None:
    pat = await customer_by_email(PAT)
    theirs = pat.invoice_settings_default_payment_method
    async with signed_in(settings, demo, JENNY) as jenny:
        assert (await jenny.get(f"/portal/payment-methods/{theirs}/remove")).status_code == 404
        response = await jenny.post(
            f"/portal/payment-methods/{theirs}/remove", {"intent": "z" * 22}, htmx=True
        )
        assert response.status_code == 404
        no_csrf = await jenny.post(
            f"/portal/payment-methods/{theirs}/remove", {"intent": "z" * 22}, csrf=False
        )
        assert no_csrf.status_code == 403
    assert len(await cards_of(pat.id)) == 1
    assert await audit_events("payment_method.removed") == []


async def test_remove_without_csrf_is_403(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        second = await _add_second_card(jenny)
        confirm = await jenny.get(f"/portal/payment-methods/{second}/remove")
        response = await jenny.post(
            f"/portal/payment-methods/{second}/remove",
            {"intent": intents_on(confirm.text)[0]},
            csrf=False,
        )
        assert response.status_code == 403
        assert len(await cards_of(jenny.customer.id)) == 2


async def test_switched_off(settings, demo) -> None:
    await set_features(demo, payment_method_update={"enabled": False})
    async with signed_in(settings, demo, JENNY) as jenny:
        card = jenny.customer.invoice_settings_default_payment_method
        overview = await jenny.get("/portal")
        assert 'href="/portal/payment-methods"' not in overview.text
        for url in (
            "/portal/payment-methods",
            "/portal/payment-methods/new",
            f"/portal/payment-methods/{card}/remove",
        ):
            assert (await jenny.get(url)).status_code == 404, url
        for url in ("/portal/payment-methods", f"/portal/payment-methods/{card}/default"):
            response = await jenny.post(url, {**CARD, "intent": "w" * 22})
            assert response.status_code == 404, url
    customer = await Customer.objects().where(Customer.email == JENNY).first()
    assert customer.invoice_settings_default_payment_method == card
