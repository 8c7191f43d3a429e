"""Idempotency records: one customer intent changes billing once.

``run(key, …, work=…)`` opens the gateway call's one write transaction and, inside it:

1. looks up ``IdempotencyRecord(id=key)``: same request hash → the stored result is returned and
   nothing changes; a different hash → ``IdempotencyConflict``;
2. otherwise claims the key (inserts the record) *before* doing the work, then runs ``work()`` and
   stores its result on the record. Work that raises rolls everything back, the claim included, so
   a failed attempt (a declined card, a typo) can be retried with the same key.

Concurrent calls with one key: on SQLite the write transactions queue (``BEGIN IMMEDIATE``), so the
second one finds the record and replays. On PostgreSQL both may find nothing; the second claim then
waits on the first's uncommitted row and fails with a unique violation on the primary key once the
first commits. That error rolls the loser back (it did no work yet: the claim comes first) and the
call is retried once, which finds the record and replays. The caller never sees a 500.

Like Stripe, only successful results are stored (Stripe also skips requests that fail validation).

``applied(key, customer)`` tells whether a key's change was applied: the portal uses it to finish a
form whose billing change committed but whose process died before the audit event was written
(``app.portal.activity``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from app import clock, db
from app.billing.gateway import IdempotencyConflict
from app.billing.tables import IdempotencyRecord

Result = dict[str, Any]

try:  # asyncpg is only needed with PostgreSQL
    from asyncpg.exceptions import UniqueViolationError
except ImportError:  # pragma: no cover
    UniqueViolationError = ()  # type: ignore[assignment,misc]


def request_hash(action: str, arguments: dict[str, Any]) -> str:
    """SHA-256 of the action and its arguments (canonical JSON, keys sorted). Callers leave out
    secrets (a card's number and CVC never reach this)."""
    body = msgspec.json.encode({"action": action, "arguments": arguments}, order="sorted")
    return hashlib.sha256(body).hexdigest()


async def applied(key: str, customer: str) -> bool:
    """Whether ``key`` changed billing for ``customer``: its record exists (written with the change,
    in the same transaction, by the sandbox and the Stripe gateway alike)."""
    return await IdempotencyRecord.exists().where(
        (IdempotencyRecord.id == key) & (IdempotencyRecord.customer == customer)
    )


def _decode(raw: Any) -> Result:
    if isinstance(raw, str | bytes):
        return msgspec.json.decode(raw) if raw else {}
    return dict(raw or {})


def _is_key_violation(error: BaseException) -> bool:
    """A unique violation on the idempotency record's primary key (another call with the same key
    committed first)."""
    if UniqueViolationError and isinstance(error, UniqueViolationError):
        return "billing_idempotency" in str(getattr(error, "constraint_name", "") or error)
    if isinstance(error, sqlite3.IntegrityError):
        return "billing_idempotency" in str(error)
    return False


async def _attempt(
    key: str,
    action: str,
    digest: str,
    customer: str | Callable[[], Awaitable[str]],
    work: Callable[[], Awaitable[Result]],
) -> Result:
    async with db.write():
        found = await IdempotencyRecord.select().where(IdempotencyRecord.id == key).first()
        if found is not None:
            if found["request_hash"] != digest:
                raise IdempotencyConflict()
            return _decode(found["result"])
        owner = customer if isinstance(customer, str) else await customer()
        await IdempotencyRecord.insert(
            IdempotencyRecord(
                id=key,
                customer=owner,
                action=action,
                request_hash=digest,
                result="{}",
                created=clock.now(),
            )
        )
        result = await work()
        await IdempotencyRecord.update(
            {IdempotencyRecord.result: msgspec.json.encode(result).decode()}
        ).where(IdempotencyRecord.id == key)
        return result


async def run(
    key: str,
    *,
    action: str,
    arguments: dict[str, Any],
    customer: str | Callable[[], Awaitable[str]],
    work: Callable[[], Awaitable[Result]],
) -> Result:
    """Run ``work`` at most once for ``key`` in one write transaction; see the module docstring.
    ``customer`` is the owner's id, or a coroutine function that finds it inside the
    transaction."""
    if not key:
        raise ValueError("an idempotency key is required")
    digest = request_hash(action, arguments)
    try:
        return await _attempt(key, action, digest, customer, work)
    except Exception as error:
        if not _is_key_violation(error):
            raise
    # Lost a race to a concurrent call with the same key: it has committed, so this replays.
    return await _attempt(key, action, digest, customer, work)
