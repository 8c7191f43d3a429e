"""What the portal records: one audit event per customer action, however often its form is sent.

Every action runs with its form's idempotency key (``intents``), and the key goes into the
action's audit event (``after["idempotency_key"]``; the activity pages hide it):

- ``replayed(who, actions, key)``: this key already did the action (a double submit, a retry).
  The caller answers as the first submit did, without re-checking rules the first submit changed
  (the card is gone, the invoice is paid); the gateway call with the same key changes nothing.
- ``record_once(who, action, key=…)``: writes the event unless the key has one. Concurrent submits
  of one form are serialised by ``customer_lock``, so exactly one event is written.

``customer_lock(customer_id)`` is the one lock for a customer's portal writes: a write transaction
(``BEGIN IMMEDIATE`` on SQLite, which serialises writers) that on PostgreSQL also holds the
customer's row ``FOR UPDATE``. Rules that must hold across concurrent requests (the last payment
method) are checked inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from app import db
from app.audit import service as audit
from app.audit.tables import AuditEvent
from app.billing.tables import Customer

KEY = "idempotency_key"
# How far back a key is looked for: a replay comes soon after its first submit.
RECENT_EVENTS = 100


class Who(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in customer acting, and through which portal configuration."""

    actor: audit.Actor
    configuration: str

    @property
    def customer_id(self) -> str:
        return self.actor.id


@asynccontextmanager
async def customer_lock(customer_id: str) -> AsyncIterator[None]:
    async with db.write():
        if db.is_postgres():
            await Customer.select(Customer.id).where(Customer.id == customer_id).lock_rows()
        yield


async def replayed(who: Who, actions: str | tuple[str, ...], key: str) -> bool:
    """Whether ``key`` already did one of ``actions`` for this customer."""
    names = [actions] if isinstance(actions, str) else list(actions)
    rows = (
        await AuditEvent.select(AuditEvent.after)
        .where((AuditEvent.actor_id == who.customer_id) & AuditEvent.action.is_in(names))
        .order_by(AuditEvent.created_at, ascending=False)
        .limit(RECENT_EVENTS)
        .output(load_json=True)
    )
    return any(isinstance(row["after"], dict) and row["after"].get(KEY) == key for row in rows)


async def record(
    who: Who,
    action: str,
    *,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """An event that has no form key (signing out, an offer shown)."""
    await audit.record(
        who.actor,
        action,
        configuration=who.configuration,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
    )


async def record_once(
    who: Who,
    action: str,
    *,
    key: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> bool:
    """The action's event, carrying ``key``, unless ``key`` already has one; True when written."""
    async with customer_lock(who.customer_id):
        if await replayed(who, action, key):
            return False
        await record(
            who,
            action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after={**(after or {}), KEY: key},
        )
        return True
