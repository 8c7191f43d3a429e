"""One-time form keys ("intents"): every form that changes billing carries one, and the gateway
call is idempotent on it, so a double click or a second tab changes billing once.

A form shown again after its gateway call failed carries:

- a NEW intent after a ``GatewayError`` (a declined card, an invalid code…): Stripe keeps its
  answer to a failed request per key, so the corrected form must not send the same key again;
- the SAME intent after ``GatewayUnavailable`` (billing did not answer in time, and may have done
  it): retrying with the same key can then never do it twice.

Pages hand out intents through an ``Issuer`` (``new_intent`` in the template context), called
with the form's name (the element its errors go to); ``after_failure`` builds the one that gives
the failed form its intent back.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from app.billing.gateway import GatewayUnavailable

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


class Issuer:
    """Gives each rendered form its intent: a fresh one, except a form named in ``keep``."""

    def __init__(self, keep: dict[str, str] | None = None) -> None:
        self.keep = keep or {}

    def __call__(self, form: str = "") -> str:
        return self.keep.get(form) or new_intent()


def after_failure(error: Exception, intent: str | None, form: str = "") -> Issuer:
    """The issuer for a page re-rendered after ``error``: ``form`` keeps ``intent`` only when
    billing did not answer."""
    if isinstance(error, GatewayUnavailable) and intent:
        return Issuer({form: intent})
    return Issuer()
