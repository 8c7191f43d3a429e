"""Events recorded for state changes and Stripe-signed webhook payloads."""

from __future__ import annotations

import json

import pytest
import stripe

from tests.stripe_api import StripeAPIServer

SECRET = "whsec_test_portico"


async def test_events_list_and_retrieve(
    stripe_api: StripeAPIServer, stripe_client, catalog, paying_customer
) -> None:
    subscription = stripe_api.create_subscription(
        customer=paying_customer["id"], items=[{"price": catalog["basic"]["id"]}]
    )
    await stripe_client.v1.subscriptions.update_async(
        subscription["id"], {"metadata": {"seat": "1"}}
    )
    updates = await stripe_client.v1.events.list_async(
        {"type": "customer.subscription.updated", "limit": 1}
    )
    event = updates.data[0]
    assert event.id.startswith("evt_")
    assert event.data.object.id == subscription["id"]
    assert event.data.previous_attributes.metadata.to_dict() == {}
    assert event.request.idempotency_key  # caused by an API request
    wildcard = await stripe_client.v1.events.list_async({"type": "invoice.*", "limit": 100})
    assert {e.type for e in wildcard.data} >= {"invoice.created", "invoice.paid"}
    since = await stripe_client.v1.events.list_async({"created": {"gte": event.created}})
    assert event.id in [e.id for e in since.data]
    fetched = await stripe_client.v1.events.retrieve_async(event.id)
    assert fetched.type == "customer.subscription.updated"
    expected = {
        "product.created",
        "price.created",
        "customer.created",
        "customer.updated",
        "payment_method.attached",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    }
    assert expected <= {e["type"] for e in stripe_api.events}


def test_signed_event_verifies_with_the_sdk(stripe_api: StripeAPIServer) -> None:
    customer = stripe_api.create_customer(email="hook@example.test")
    event = stripe_api.events_of("customer.created")[-1]
    body, headers = stripe_api.webhook_request(event, SECRET)
    verified = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET)
    assert verified.type == "customer.created"
    assert verified.data.object.id == customer["id"]

    payload = json.dumps(event)
    header = stripe_api.sign_event(payload, SECRET)
    assert header.startswith("t=")
    assert ",v1=" in header
    assert stripe.Webhook.construct_event(payload, header, SECRET).id == event["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_wrong")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace("hook@", "evil@"), header, SECRET)
    stale = stripe_api.sign_event(payload, SECRET, timestamp=1_000_000_000)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, stale, SECRET)
