"""Every portal form, shown again after its gateway call failed (``app.portal.intents``):

- after a ``GatewayError`` it carries a NEW intent (Stripe keeps its answer to a failed request
  per key, so the corrected form must send another key), with 422;
- after ``GatewayUnavailable`` it carries the SAME intent (billing may have done it: the same key
  makes the retry safe), with 502 and, for htmx, the whole page.

And every portal form sent again after the process died between its billing commit and its audit
event: a replay (the success answer), whose missing event is written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from app.audit.tables import AuditEvent
from app.billing.gateway import GatewayError, GatewayUnavailable
from app.billing.tables import IdempotencyRecord, Invoice, PaymentMethod, Subscription, TaxId
from tests.helpers import JENNY, LEE, MAX
from tests.portal.subscriptions.support import price_id, subscription_of
from tests.portal.support import (
    FailingGateway,
    SignedIn,
    intent_of,
    set_features,
    signed_in,
    success_target,
)

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


# --- the process dies after billing committed, before the audit event --------------------------
# Each form's audit event(s).
EVENTS = {
    "change plan": ("subscription.plan_changed",),
    "cancel": ("subscription.canceled",),
    "accept offer": ("subscription.retention_accepted",),
    "pause": ("subscription.paused",),
    "renew": ("subscription.renewed",),
    "resume": ("subscription.resumed",),
    "add card": ("payment_method.added",),
    "make default": ("payment_method.default_set",),
    "remove card": ("payment_method.removed",),
    "save details": ("customer.details_updated",),
    "add tax ID": ("customer.tax_id_added",),
    "remove tax ID": ("customer.tax_id_removed",),
    "pay invoice": ("invoice.paid", "invoice.payment_redirected"),
}

# What a form sends besides its intent, where the event records it.
SURVEY = {"cancel": {"reason": "too_expensive", "comment": "Prices went up."}}


class Died(BaseException):
    """The process died here (SIGKILL): nothing after this point runs."""


class DyingGateway:
    """Wraps the app's gateway; the named method does its work, then the process dies."""

    def __init__(self, inner: Any, method: str) -> None:
        self.inner = inner
        self.method = method

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name != self.method:
            return found

        async def die(*args: Any, **kwargs: Any) -> Any:
            await found(*args, **kwargs)
            raise Died(name)

        return die


async def events_of(client: SignedIn, actions: tuple[str, ...]) -> list[dict[str, Any]]:
    return (
        await AuditEvent.select()
        .where((AuditEvent.actor_id == client.customer.id) & AuditEvent.action.is_in(list(actions)))
        .output(load_json=True)
    )


def test_every_form_has_its_events() -> None:
    assert EVENTS.keys() == FORMS.keys()


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize("name", list(FORMS))
async def test_the_same_form_after_the_process_died_past_the_billing_commit(
    settings, demo, name, htmx
) -> None:
    """Billing changed with the form's key, then the process died before the audit event was
    written: the same form sent again (twice at once, then once more) is a replay. It answers as
    the first submit would have, and the missing event is written, once."""
    form = FORMS[name]
    await set_features(demo, subscription_pause={"enabled": True})
    async with signed_in(settings, demo, form.email) as client:
        scene = await form.scene(client)
        data = {**scene.data, **SURVEY.get(name, {}), "intent": intent_of(scene.html, scene.action)}
        gateway = client.app.state.gateway
        client.app.state.gateway = DyingGateway(gateway, form.method)
        records = await IdempotencyRecord.count()
        with pytest.raises(Died):
            await client.post(scene.action, data, htmx=htmx)
        client.app.state.gateway = gateway
        assert await events_of(client, EVENTS[name]) == []
        if name != "remove card":  # detached under the customer's lock: no commit before it
            assert await IdempotencyRecord.count() == records + 1  # billing changed

        answers = await asyncio.gather(*(client.post(scene.action, data, htmx=htmx) for _ in "12"))
        answers.append(await client.post(scene.action, data, htmx=htmx))
        targets = {success_target(answer, htmx) for answer in answers}
        assert len(targets) == 1, [answer.text for answer in answers]
        (event,) = await events_of(client, EVENTS[name])
        assert event["after"]["idempotency_key"]
        if name == "remove card":
            assert "recovered" not in event["after"]  # the first submit left nothing: a new one
        else:
            assert event["after"]["recovered"] is True
            assert event["before"] == {}
        for field, value in SURVEY.get(name, {}).items():  # what the form asked is kept
            assert event["after"][field] == value
        page = await client.get(targets.pop())
        assert page.status_code == 200
