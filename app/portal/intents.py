"""One-time form keys ("intents"): every form that changes billing carries one, and the gateway
call is idempotent on it, so a double click or a second tab changes billing once."""

from __future__ import annotations

import hashlib
import re
import secrets

FIELD = "intent"
_FORMAT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_intent() -> str:
    return secrets.token_urlsafe(16)


def read_intent(data: dict[str, str]) -> str | None:
    """The submitted intent, or None when it is missing or malformed (a tampered form)."""
    value = data.get(FIELD, "")
    return value if _FORMAT.match(value) else None


def idempotency_key(customer_id: str, action: str, intent: str) -> str:
    """Bound to the customer and the action, so a key can never be replayed across either."""
    digest = hashlib.sha256(f"{customer_id}\x1f{action}\x1f{intent}".encode()).hexdigest()
    return f"portico_{digest[:48]}"
