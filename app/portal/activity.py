"""What the portal records: one audit event per customer action, however often its form is sent.

Every action runs with its form's idempotency key (``intents``), and the key goes into the
action's audit event (``after["idempotency_key"]``; the activity pages hide it). Before its rules,
an action asks what its key already did (``replay(who, actions, key)``):

- ``Replay.NEW``: nothing; the rules are checked and the action runs.
- ``Replay.RECORDED``: the key did the action and its event is recorded (a double submit, a
  retry). The caller answers as the first submit did, without re-checking rules the first submit
  changed (the card is gone, the invoice is paid); the gateway call with the same key changes
  nothing.
- ``Replay.APPLIED``: billing changed with the key (its ``IdempotencyRecord``, committed with the
  change) but no event says so: the process died between the billing commit and the event's own,
  later transaction. The caller answers as a replay too, and writes the missing event with
  ``record_once(…, replay=Replay.APPLIED)``: the state before the change is gone by then, so the
  event has no ``before`` and its ``after`` (the state now) says ``"recovered": true``.

For ``APPLIED`` to mean "the event is missing", every action records an event whenever its
gateway call succeeds: a form that would change nothing is not sent to billing.

``record_once(who, action, key=…)`` writes the event unless the key has one. Concurrent submits of
one form are serialised by ``customer_lock``, so exactly one event is written. When a recovered
event came first (a retry that found the first submit between its billing commit and its event,
a slow request rather than a dead one), the first submit's own event replaces its content.

``customer_lock(customer_id)`` is the one lock for a customer's portal writes: a write transaction
(``BEGIN IMMEDIATE`` on SQLite, which serialises writers) that on PostgreSQL also holds the
customer's row ``FOR UPDATE``. Rules that must hold across concurrent requests (the last payment
method) are checked inside it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from app import db
from app.audit import service as audit
from app.audit.tables import AuditEvent
from app.billing import idempotency
from app.billing.tables import Customer

KEY = "idempotency_key"
RECOVERED = "recovered"
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


class Replay(enum.Enum):
    """What a form's key already did (see the module docstring)."""

    NEW = "new"
    APPLIED = "applied"  # billing changed, no event recorded
    RECORDED = "recorded"


async def _event(who: Who, actions: str | tuple[str, ...], key: str) -> dict[str, Any] | None:
    """The customer's event of one of ``actions`` that carries ``key`` (id and after)."""
    names = [actions] if isinstance(actions, str) else list(actions)
    rows = (
        await AuditEvent.select(AuditEvent.id, AuditEvent.after)
        .where((AuditEvent.actor_id == who.customer_id) & AuditEvent.action.is_in(names))
        .order_by(AuditEvent.created_at, ascending=False)
        .limit(RECENT_EVENTS)
        .output(load_json=True)
    )
    return next(
        (row for row in rows if isinstance(row["after"], dict) and row["after"].get(KEY) == key),
        None,
    )


async def replay(who: Who, actions: str | tuple[str, ...], key: str) -> Replay:
    """What ``key`` already did of ``actions`` for this customer."""
    if await _event(who, actions, key) is not None:
        return Replay.RECORDED
    if await idempotency.applied(key, who.customer_id):
        return Replay.APPLIED
    return Replay.NEW


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
    replay: Replay = Replay.NEW,
) -> bool:
    """The action's event, carrying ``key``, unless ``key`` already has one; True when written.
    ``replay`` is what the key had done when the request began (``replay()``): ``NEW``, the
    request made the change and records it (replacing a recovered event written meanwhile);
    ``APPLIED``, the change was made before, so the event has no ``before`` and its ``after`` is
    marked recovered; ``RECORDED``, there is nothing to write."""
    if replay is Replay.RECORDED:
        return False
    if replay is Replay.APPLIED:
        before, after = {}, {**(after or {}), RECOVERED: True}
    after = {**(after or {}), KEY: key}
    async with customer_lock(who.customer_id):
        found = await _event(who, action, key)
        if found is None:
            await record(
                who,
                action,
                object_type=object_type,
                object_id=object_id,
                before=before,
                after=after,
            )
            return True
        if replay is Replay.NEW and found["after"].get(RECOVERED):
            await AuditEvent.update(
                {
                    AuditEvent.object_type: object_type,
                    AuditEvent.object_id: object_id,
                    AuditEvent.before: msgspec.json.encode(before or {}).decode(),
                    AuditEvent.after: msgspec.json.encode(after).decode(),
                }
            ).where(AuditEvent.id == found["id"])
        return False
