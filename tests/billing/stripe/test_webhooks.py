"""``POST /webhooks/stripe`` through the whole app, and ``reconcile`` after an outage."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from litestar import Litestar

from app import db as database
from app.billing import stripe_events
from app.billing.stripe_gateway import StripeGateway
from app.billing.stripe_tables import StripeEvent
from app.billing.tables import Customer, PaymentMethod, Subscription, SubscriptionItem, TaxId
from app.factory import create_app
from app.settings import Settings
from tests.billing.stripe.conftest import WEBHOOK_SECRET
from tests.stripe_api import StripeAPIServer


@asynccontextmanager
async def open_app(settings: Settings) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    previous = database.current()
    app = create_app(settings)
    try:
        async with (
            app.lifespan(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://portal.test"
            ) as client,
        ):
            yield app, client
    finally:
        gateway = app.state.gateway
        if isinstance(gateway, StripeGateway):
            await gateway.aclose()
        database.bind(previous)


async def deliver(
    client: httpx.AsyncClient, server: StripeAPIServer, event: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    body, headers = server.webhook_request(event, kwargs.pop("secret", WEBHOOK_SECRET), **kwargs)
    return await client.post("/webhooks/stripe", content=body, headers=headers)


def gets(server: StripeAPIServer, object_id: str) -> int:
    return sum(1 for r in server.requests if r.method == "GET" and r.path.endswith(object_id))


async def test_bad_signatures_are_refused_and_change_nothing(
    stripe_api: StripeAPIServer, db, stripe_settings: Settings
) -> None:
    async with open_app(stripe_settings) as (_, client):
        stripe_api.create_customer(email="hook@example.test")
        event = stripe_api.events_of("customer.created")[-1]
        body, headers = stripe_api.webhook_request(event, WEBHOOK_SECRET)
        tampered = body.replace(b"hook@example.test", b"evil@example.test")
        stale = int(time.time()) - 301
        attempts = [
            await deliver(client, stripe_api, event, secret="whsec_wrong"),
            await deliver(client, stripe_api, event, timestamp=stale),
            await client.post("/webhooks/stripe", content=tampered, headers=headers),
            await client.post(
                "/webhooks/stripe", content=body, headers={"Content-Type": "application/json"}
            ),
            await client.post(
                "/webhooks/stripe",
                content=b"\xff\xfe",
                headers={"Stripe-Signature": stripe_api.sign_event("x", WEBHOOK_SECRET)},
            ),
        ]
        assert [a.status_code for a in attempts] == [400] * 5
        assert await StripeEvent.count() == 0
        assert await Customer.count() == 0
        assert not stripe_api.requests  # nothing was even fetched
        # The genuine delivery is accepted (no CSRF token needed: the signature protects it).
        answer = await deliver(client, stripe_api, event)
        assert answer.status_code == 200
        assert answer.json() == {
            "received": True,
            "status": "processed",
        }
        customer = await Customer.objects().first()
        assert customer is not None
        assert customer.email == "hook@example.test"


async def test_the_same_event_twice_is_applied_once(
    stripe_api: StripeAPIServer, db, stripe_settings: Settings
) -> None:
    async with open_app(stripe_settings) as (_, client):
        customer = stripe_api.create_customer(email="twice@example.test")
        event = stripe_api.events_of("customer.created")[-1]
        first = await deliver(client, stripe_api, event)
        second = await deliver(client, stripe_api, event)
        assert first.json()["status"] == "processed"
        assert second.json()["status"] == "duplicate"
        assert gets(stripe_api, customer["id"]) == 1
        row = await StripeEvent.objects().where(StripeEvent.id == event["id"]).first()
        assert row is not None
        assert row.status == "processed"
        assert row.object_id == customer["id"]
        ignored = stripe_api.events_of("invoiceitem.created") or [
            {
                **event,
                "id": "evt_unfollowed",
                "type": "radar.early_fraud_warning.created",
                "data": {"object": {"id": "issfr_1", "object": "radar.early_fraud_warning"}},
            }
        ]
        answer = await deliver(client, stripe_api, ignored[-1])
        assert answer.json()["status"] == "ignored"


async def test_events_out_of_order_leave_the_mirror_equal_to_stripe(
    stripe_api: StripeAPIServer, db, stripe_settings: Settings, catalog, payer
) -> None:
    async with open_app(stripe_settings) as (_, client):
        sub = stripe_api.create_subscription(
            customer=payer["id"], items=[{"price": catalog["basic"]["id"]}]
        )
        item = sub["items"]["data"][0]["id"]
        path = f"/v1/subscriptions/{sub['id']}"
        stripe_api.call(
            "POST", path, items=[{"id": item, "price": catalog["pro"]["id"], "quantity": 3}]
        )
        stripe_api.call("POST", path, cancel_at_period_end=True)
        stripe_api.call("POST", path, pause_collection={"behavior": "void"})
        stripe_api.call("POST", path, cancel_at_period_end=False)
        events = [
            e
            for e in stripe_api.events
            if e["type"].startswith(("customer.", "invoice.", "payment_method."))
        ]
        for event in reversed(events):  # newest first: the worst order
            answer = await deliver(client, stripe_api, event)
            assert answer.status_code == 200
        server = stripe_api.get(sub["id"])
        row = await Subscription.objects().where(Subscription.id == sub["id"]).first()
        assert row is not None
        assert row.status == server["status"] == "active"
        assert row.cancel_at_period_end is False
        assert row.pause_collection_behavior == "void"
        items = await SubscriptionItem.select(
            SubscriptionItem.price, SubscriptionItem.quantity
        ).where(SubscriptionItem.subscription == sub["id"])
        assert items == [{"price": catalog["pro"]["id"], "quantity": 3}]
        assert await PaymentMethod.count().where(PaymentMethod.customer == payer["id"]) == 1


async def test_reconcile_applies_what_happened_while_the_endpoint_was_down(
    stripe_api: StripeAPIServer, db, stripe_settings: Settings, catalog, payer
) -> None:
    async with open_app(stripe_settings) as (app, client):
        sub = stripe_api.create_subscription(
            customer=payer["id"], items=[{"price": catalog["basic"]["id"]}]
        )
        for event in list(stripe_api.events):
            await deliver(client, stripe_api, event)
        assert await Subscription.count() == 1
        # The endpoint is down: these events are never delivered.
        stripe_api.advance_clock(3600)
        stripe_api.call("POST", f"/v1/subscriptions/{sub['id']}", cancel_at_period_end=True)
        newcomer = stripe_api.create_customer(email="new@example.test", name="New")
        tax_id = stripe_api.create(
            "tax_id", customer=payer["id"], type="eu_vat", value="NL123456789"
        )
        card = payer["invoice_settings"]["default_payment_method"]
        stripe_api.call("POST", f"/v1/payment_methods/{card}/detach")
        # A webhook that arrives while Stripe cannot be reached stays pending.
        stripe_api.inject_fault("/v1/customers/*", status=500, times=None, should_retry=False)
        late = stripe_api.events_of("customer.created")[-1]
        answer = await deliver(client, stripe_api, late)
        assert answer.status_code == 200
        assert answer.json()["status"] == "pending"
        stripe_api.clear_faults()
        gateway = app.state.gateway
        assert gateway.health.degraded  # the portal shows "billing is unreachable" for a while

        result = await stripe_events.reconcile(gateway.client)
        assert result.applied >= 5
        assert result.already >= 1
        row = await Subscription.objects().where(Subscription.id == sub["id"]).first()
        assert row is not None
        assert row.cancel_at_period_end is True
        assert await Customer.exists().where(Customer.id == newcomer["id"])
        assert await TaxId.exists().where(TaxId.id == tax_id["id"])
        pm = await PaymentMethod.objects().where(PaymentMethod.id == card).first()
        assert pm is not None
        assert pm.customer is None
        customer = await Customer.objects().where(Customer.id == payer["id"]).first()
        assert customer is not None
        assert customer.invoice_settings_default_payment_method is None
        assert await StripeEvent.count().where(StripeEvent.status == "pending") == 0
        # Nothing new: a second run applies nothing.
        again = await stripe_events.reconcile(gateway.client)
        assert again.applied == 0
        assert again.listed == again.already


async def test_the_route_is_not_there_in_sandbox_mode(db, stripe_settings: Settings) -> None:
    sandbox = msgspec.structs.replace(stripe_settings, billing="sandbox")
    async with open_app(sandbox) as (_, client):
        answer = await client.post("/webhooks/stripe", content=json.dumps({}).encode())
    assert answer.status_code == 404
