"""The frame every Stripe gateway action runs in: ``StripeActions``.

How one write runs (``StripeActions.intent``):

1. The customer's intent key is looked up in ``IdempotencyRecord``: a finished intent with the
   same arguments returns its stored result without calling Stripe; different arguments raise
   ``IdempotencyConflict``.
2. Stripe is called (async SDK methods) within ``stripe_client.DEADLINE`` seconds in total. Every
   POST carries the request option ``idempotency_key = "<intent>:<action>:<step>"`` (``Keys``):
   a double submit, a retry after a timeout or a replay after a crash never changes Stripe twice
   (Stripe answers the stored response; a replayed object is re-fetched so the mirror gets
   current data). Requests that change Stripe ask for the expansions the mirror needs, so they
   answer with the subscription, its items, prices, products, latest invoice, discounts and
   schedule.
3. The returned objects (``Outcome.batch``, completed with referenced objects the mirror lacks)
   are written in ONE write transaction together with the idempotency record. When Stripe fails
   nothing is written.

``StripeActions.guard`` is ``stripe_client.guard`` with the gateway's deadline that also keeps
``BillingHealth`` (``app.billing.health``) up to date: ``GatewayUnavailable`` marks billing
degraded, an answered call clears it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import stripe

from app import db
from app.billing import idempotency
from app.billing.gateway import GatewayError, GatewayUnavailable, IdempotencyConflict
from app.billing.health import BillingHealth
from app.billing.stripe_batch import Batch
from app.billing.stripe_client import DEADLINE, StripeConnection, guard, plain, replayed
from app.billing.stripe_fetch import SUBSCRIPTION_EXPAND, complete, fetch_subscription
from app.billing.tables import IdempotencyRecord

log = logging.getLogger("portico.stripe")

Override = Callable[[stripe.StripeError], GatewayError | None]


@dataclass
class Outcome:
    """What one action's Stripe calls produced: objects for the mirror, the customer the intent
    belongs to, and the result stored with the idempotency record."""

    customer: str
    batch: Batch = field(default_factory=Batch)
    result: dict[str, Any] = field(default_factory=dict)


class Keys:
    """Idempotency keys for the Stripe requests of one intent: ``<intent>:<action>:<step>``."""

    def __init__(self, intent: str, action: str) -> None:
        self.prefix = f"{intent}:{action}"

    def __call__(self, step: str) -> dict[str, Any]:
        return {"idempotency_key": f"{self.prefix}:{step}"[:255]}


def _decode(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str | bytes):
        return msgspec.json.decode(raw) if raw else {}
    return dict(raw or {})


class StripeActions:
    """The connection, deadline and health record the gateway's actions share."""

    def __init__(
        self,
        connection: StripeConnection,
        *,
        deadline: float = DEADLINE,
        health: BillingHealth | None = None,
    ) -> None:
        self.connection = connection
        self.deadline = deadline
        self.health = health or BillingHealth()

    @property
    def client(self) -> stripe.StripeClient:
        return self.connection.client

    @asynccontextmanager
    async def guard(self, failure: str, override: Override | None = None) -> AsyncIterator[None]:
        """Stripe calls within the deadline, SDK errors as ``GatewayError``s, health kept."""
        try:
            async with guard(failure, deadline=self.deadline, override=override):
                yield
        except GatewayUnavailable:
            self.health.failed()
            raise
        self.health.recovered()

    async def intent(
        self,
        key: str,
        action: str,
        arguments: dict[str, Any],
        failure: str,
        work: Callable[[Keys], Awaitable[Outcome]],
        *,
        override: Override | None = None,
    ) -> dict[str, Any]:
        """Run ``work`` once per intent key (see the module docstring); its result."""
        if not key:
            raise ValueError("an idempotency key is required")
        digest = idempotency.request_hash(action, arguments)
        found = await IdempotencyRecord.select().where(IdempotencyRecord.id == key).first()
        if found is not None:
            if found["request_hash"] != digest:
                raise IdempotencyConflict()
            return _decode(found["result"])
        async with self.guard(failure, override=override):
            outcome = await work(Keys(key, action))
            await complete(self.client, outcome.batch)
        async with db.write():
            await outcome.batch.apply()
            await IdempotencyRecord.insert(
                IdempotencyRecord(
                    id=key,
                    customer=outcome.customer,
                    action=action,
                    request_hash=digest,
                    result=msgspec.json.encode(outcome.result).decode(),
                    created=datetime.now(UTC),
                )
            ).on_conflict(target=IdempotencyRecord.id, action="DO NOTHING")
        return outcome.result

    # -- subscription writes shared by plan changes and the lifecycle actions ---------------
    async def fresh_subscription(self, obj: Any) -> dict[str, Any]:
        """The subscription a write answered with, re-fetched if Stripe replayed an old answer."""
        sub = plain(obj)
        if replayed(obj):
            return await fetch_subscription(self.client, sub["id"])
        return sub

    async def update_subscription(
        self, subscription_id: str, params: dict[str, Any], keys: Keys, step: str = "update"
    ) -> dict[str, Any]:
        """``subscriptions.update`` with the mirror's expansions."""
        obj = await self.client.v1.subscriptions.update_async(
            subscription_id, {**params, "expand": SUBSCRIPTION_EXPAND}, keys(step)
        )
        return await self.fresh_subscription(obj)

    async def release_schedule(self, schedule_id: str | None, keys: Keys, batch: Batch) -> None:
        """Release a pending schedule (the scheduled phase never starts); one that is no longer
        active is left alone."""
        if not schedule_id:
            return
        try:
            released = await self.client.v1.subscription_schedules.release_async(
                schedule_id, None, keys("release")
            )
        except stripe.InvalidRequestError as error:
            log.info("schedule %s not released: %s", schedule_id, error.user_message)
            return
        batch.add(plain(released))
