"""Every portal form, shown again after its gateway call failed (``app.portal.intents``):

- after a ``GatewayError`` it carries a NEW intent (Stripe keeps its answer to a failed request
  per key, so the corrected form must send another key), with 422;
- after ``GatewayUnavailable`` it carries the SAME intent (billing may have done it: the same key
  makes the retry safe), with 502 and, for htmx, the whole page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from app.billing.gateway import GatewayError, GatewayUnavailable
from app.billing.tables import Invoice, PaymentMethod, Subscription, TaxId
from tests.helpers import JENNY, LEE, MAX
from tests.portal.subscriptions.support import price_id, subscription_of
from tests.portal.support import FailingGateway, SignedIn, intent_of, set_features, signed_in

SUBS = "/portal/subscriptions"
CARD = {"number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123", "name": "M"}


@dataclass(frozen=True)
class Scene:
    html: str  # the page with the form
    action: str  # where the form posts
    data: dict[str, str]
    again: str = ""  # where the form shown again posts (when not ``action``)


@dataclass(frozen=True)
class Form:
    email: str
    method: str  # the gateway call that fails
    scene: Callable[[SignedIn], Awaitable[Scene]]


async def _text(client: SignedIn, url: str, data: dict[str, str] | None = None) -> str:
    response = await (client.post(url, data) if data is not None else client.get(url))
    assert response.status_code == 200, response.text
    return response.text


async def change_plan(client: SignedIn) -> Scene:
    sub = await subscription_of(JENNY)
    data = {"price": await price_id("Business", "month")}
    html = await _text(client, f"{SUBS}/{sub['id']}/preview", data)
    return Scene(html, f"{SUBS}/{sub['id']}/change", data, again=f"{SUBS}/{sub['id']}/preview")


async def cancel(client: SignedIn) -> Scene:
    base = f"{SUBS}/{(await subscription_of(JENNY))['id']}"
    return Scene(await _text(client, f"{base}/cancel/review", {}), f"{base}/cancel", {})


async def accept_offer(client: SignedIn) -> Scene:
    base = f"{SUBS}/{(await subscription_of(JENNY))['id']}"
    return Scene(await _text(client, f"{base}/cancel/review", {}), f"{base}/offer", {})


async def pause(client: SignedIn) -> Scene:
    base = f"{SUBS}/{(await subscription_of(JENNY))['id']}"
    return Scene(await _text(client, f"{base}/pause"), f"{base}/pause", {"mode": "indefinitely"})


async def renew(client: SignedIn) -> Scene:
    base = f"{SUBS}/{(await subscription_of(LEE))['id']}"
    return Scene(await _text(client, SUBS), f"{base}/renew", {})


async def resume(client: SignedIn) -> Scene:
    sub = await subscription_of(JENNY)
    await Subscription.update({Subscription.pause_collection_behavior: "void"}).where(
        Subscription.id == sub["id"]
    )
    return Scene(await _text(client, SUBS), f"{SUBS}/{sub['id']}/resume", {})


async def add_card(client: SignedIn) -> Scene:
    html = await _text(client, "/portal/payment-methods/new")
    return Scene(html, "/portal/payment-methods", CARD)


async def _second_card(client: SignedIn) -> str:
    await PaymentMethod.insert(
        PaymentMethod(
            id="pm_test_second",
            customer=client.customer.id,
            card_brand="mastercard",
            card_last4="4444",
            card_exp_month=4,
            card_exp_year=2031,
            created=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    return "pm_test_second"


async def make_default(client: SignedIn) -> Scene:
    url = f"/portal/payment-methods/{await _second_card(client)}/default"
    return Scene(await _text(client, "/portal/payment-methods"), url, {})


async def remove_card(client: SignedIn) -> Scene:
    url = f"/portal/payment-methods/{await _second_card(client)}/remove"
    return Scene(await _text(client, url), url, {})


async def save_details(client: SignedIn) -> Scene:
    return Scene(await _text(client, "/portal/details"), "/portal/details", {"name": "J R"})


async def add_tax_id(client: SignedIn) -> Scene:
    data = {"tax_id_type": "eu_vat", "tax_id_value": "DE123456789"}
    return Scene(await _text(client, "/portal/details"), "/portal/details/tax-ids", data)


async def remove_tax_id(client: SignedIn) -> Scene:
    await TaxId.insert(
        TaxId(id="txi_test", customer=client.customer.id, type="eu_vat", value="DE123456789")
    )
    url = "/portal/details/tax-ids/txi_test/remove"
    return Scene(await _text(client, "/portal/details"), url, {})


async def pay_invoice(client: SignedIn) -> Scene:
    invoice = (
        await Invoice.select(Invoice.id)
        .where((Invoice.customer == client.customer.id) & (Invoice.status == "open"))
        .first()
    )
    url = f"/portal/invoices/{invoice['id']}"
    return Scene(await _text(client, url), f"{url}/pay", {})


FORMS = {
    "change plan": Form(JENNY, "change_subscription", change_plan),
    "cancel": Form(JENNY, "cancel_subscription", cancel),
    "accept offer": Form(JENNY, "apply_coupon", accept_offer),
    "pause": Form(JENNY, "pause_subscription", pause),
    "renew": Form(LEE, "renew_subscription", renew),
    "resume": Form(JENNY, "resume_subscription", resume),
    "add card": Form(MAX, "add_card", add_card),
    "make default": Form(JENNY, "set_default_payment_method", make_default),
    "remove card": Form(JENNY, "detach_payment_method", remove_card),
    "save details": Form(JENNY, "update_customer", save_details),
    "add tax ID": Form(JENNY, "add_tax_id", add_tax_id),
    "remove tax ID": Form(JENNY, "delete_tax_id", remove_tax_id),
    "pay invoice": Form(JENNY, "pay_invoice", pay_invoice),
}
ERRORS = {
    "refused": (GatewayError("That did not work."), 422, False),
    "unavailable": (GatewayUnavailable("Billing is not answering."), 502, True),
}


@pytest.mark.parametrize("error", list(ERRORS))
@pytest.mark.parametrize("name", list(FORMS))
async def test_a_form_shown_again_after_a_gateway_failure(settings, demo, name, error) -> None:
    form = FORMS[name]
    failure, status, same_intent = ERRORS[error]
    await set_features(demo, subscription_pause={"enabled": True})
    async with signed_in(settings, demo, form.email) as client:
        scene = await form.scene(client)
        intent = intent_of(scene.html, scene.action)
        client.app.state.gateway = FailingGateway(client.app.state.gateway, failure, form.method)
        answer = await client.post(scene.action, {**scene.data, "intent": intent}, htmx=True)
        assert client.app.state.gateway.calls == [form.method]
        assert answer.status_code == status, answer.text
        assert failure.message in answer.text
        if same_intent:  # htmx swaps this status into <body>: the whole page
            assert "<!doctype html>" in answer.text.lower()
        again = intent_of(answer.text, scene.again or scene.action)
        assert (again == intent) is same_intent
