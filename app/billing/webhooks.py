"""``POST /webhooks/stripe``: Stripe's events, verified and applied to the mirror.

- The signature (``Stripe-Signature``) is checked on the raw body with
  ``PORTICO_STRIPE_WEBHOOK_SECRET`` and a 300 s tolerance; a bad or missing signature is a 400 and
  nothing is recorded. This route is exempt from CSRF (its signature protects it).
- The event is recorded by id (``StripeEvent``) and the object it names is re-fetched from Stripe
  (``stripe_events.receive_event``), never taken from the payload, so duplicated and out-of-order
  deliveries are harmless. A repeated delivery of a processed event changes nothing.
- The answer is 200 once the event is recorded. The re-fetch happens in the request, bounded by
  ``stripe_events.WEBHOOK_DEADLINE`` (8 s, under Stripe's delivery timeout): a re-fetch is one or
  two GETs, so queueing would add machinery without making the answer meaningfully faster. If
  Stripe cannot be reached the event stays ``pending`` and ``portico stripe reconcile`` applies it
  (and billing counts as degraded for a while: ``app.billing.health``).
- Outside Stripe mode the route answers 404.
"""

from __future__ import annotations

import json
import logging

import stripe
from litestar import Request, Response, post

from app.billing import stripe_events
from app.billing.stripe_gateway import StripeGateway
from app.web.state import gateway_of, settings_of

log = logging.getLogger("portico.stripe")

TOLERANCE = 300  # seconds


class InvalidWebhook(ValueError):
    pass


def verify(payload: bytes, signature: str | None, secret: str) -> dict:
    """The event in ``payload`` if ``signature`` is Stripe's for it; else ``InvalidWebhook``."""
    if not secret:
        raise InvalidWebhook("no webhook secret is configured (PORTICO_STRIPE_WEBHOOK_SECRET)")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature, secret, TOLERANCE)
        event = json.loads(text)
    except (UnicodeDecodeError, ValueError, stripe.SignatureVerificationError) as error:
        raise InvalidWebhook(str(error)) from None
    if not isinstance(event, dict) or event.get("object") != "event" or not event.get("id"):
        raise InvalidWebhook("not a Stripe event")
    return event


@post("/webhooks/stripe", name="stripe_webhook", status_code=200)
async def stripe_webhook(request: Request) -> Response:
    settings = settings_of(request)
    gateway = gateway_of(request)
    if settings.billing != "stripe" or not isinstance(gateway, StripeGateway):
        return Response({"error": "not found"}, status_code=404)
    payload = await request.body()
    try:
        event = verify(
            payload, request.headers.get("stripe-signature"), settings.stripe_webhook_secret
        )
    except InvalidWebhook as error:
        log.warning("rejected a webhook: %s", error)
        return Response({"error": "invalid signature"}, status_code=400)
    outcome = await stripe_events.receive_event(gateway.client, event)
    if outcome == "pending":  # Stripe did not answer the re-fetch: billing is unreachable
        gateway.health.failed()
    return Response({"received": True, "status": outcome}, status_code=200)
