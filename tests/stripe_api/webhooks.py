"""Webhook signing with Stripe's real scheme.

``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>`` - the
header ``stripe.Webhook.construct_event`` verifies (default tolerance 300 seconds against
the wall clock, so signatures use real time, not the server's test clock).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    body = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    moment = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(
        secret.encode("utf-8"), f"{moment}.{body}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={moment},v1={digest}"


def webhook_request(
    event: dict[str, Any], secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` to POST ``event`` to a webhook endpoint as Stripe would."""
    body = json.dumps(event, indent=2).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(body, secret, timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return body, headers
