"""Queueing mail. A message is an outbox row first (written in the caller's transaction, so it
exists exactly when the change that caused it does), then the worker delivers it.

Secrets a message needs (a passcode) are sealed with a key derived from ``PORTICO_SECRET_KEY`` and
erased when the message is delivered, skipped or expired: the outbox never holds them in plain
text, and the merchant's outbox page never shows them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from app import clock
from app.mail.tables import OutboxMessage
from app.settings import Settings

# What a kind of message needs at delivery time: extra template context, or None to skip it
# (for example a passcode for an address that belongs to no customer).
Preparer = Callable[[OutboxMessage, dict[str, Any]], Awaitable["Prepared | None"]]


class Prepared:
    def __init__(self, subject: str, context: dict[str, Any]) -> None:
        self.subject = subject
        self.context = context


_preparers: dict[str, Preparer] = {}
_wakeup: asyncio.Event | None = None


def register(kind: str, preparer: Preparer) -> None:
    _preparers[kind] = preparer


def preparer(kind: str) -> Preparer | None:
    return _preparers.get(kind)


def _fernet(settings: Settings) -> Fernet:
    key = hmac.new(settings.secret_key.encode(), b"portico/outbox-seal", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(settings: Settings, secrets: dict[str, Any]) -> str:
    return _fernet(settings).encrypt(json.dumps(secrets).encode()).decode()


def unseal(settings: Settings, sealed: str | None) -> dict[str, Any]:
    if not sealed:
        return {}
    try:
        return json.loads(_fernet(settings).decrypt(sealed.encode()))
    except InvalidToken:
        return {}


async def enqueue(
    settings: Settings,
    *,
    kind: str,
    to_address: str,
    subject: str,
    template: str,
    context: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    configuration: str | None = None,
    reference: str | None = None,
) -> int:
    now = clock.now()
    rows = await OutboxMessage.insert(
        OutboxMessage(
            kind=kind,
            configuration=configuration,
            to_address=to_address,
            subject=subject,
            template=template,
            context=context or {},
            sealed=seal(settings, secrets) if secrets else None,
            status="queued",
            attempts=0,
            next_attempt_at=now,
            expires_at=expires_at,
            created_at=now,
            reference=reference,
        )
    )
    return rows[0]["id"]


def attach_wakeup(event: asyncio.Event | None) -> None:
    global _wakeup
    _wakeup = event


def notify() -> None:
    """Tell this process's worker there is mail (other instances find it by polling)."""
    if _wakeup is not None:
        _wakeup.set()
