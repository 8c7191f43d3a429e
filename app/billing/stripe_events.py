"""Stripe's events → the mirror: webhook deliveries and ``portico stripe reconcile``.

- ``receive_event``: a verified webhook event → recorded in ``StripeEvent`` (dedup by id), its
  object re-fetched and written with the event marked ``processed``, in one transaction. If
  Stripe cannot be reached the event stays ``pending`` (reconcile applies it later).
- ``reconcile``: list events since the watermark (or ``since``), apply those not processed yet
  (grouped: each object re-fetched once), apply events webhooks left pending, move the
  watermark. ``StripeSyncCursor`` row ``events`` keeps the watermark.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe

from app import db
from app.billing.stripe_batch import Batch, upsert
from app.billing.stripe_fetch import Target, complete, gather_limited, list_all, refetch
from app.billing.stripe_mapping import ref
from app.billing.stripe_tables import StripeEvent, StripeSyncCursor

log = logging.getLogger("portico.stripe")

WEBHOOK_DEADLINE = 8.0  # seconds to re-fetch an event's object before answering Stripe
RETENTION = timedelta(days=30)  # Stripe keeps events 30 days
WATERMARK_MARGIN = 60  # seconds re-read before the watermark (events are listed eventually)
DONE = ("processed", "ignored")

# Object types whose events the mirror follows (everything else is recorded as ignored).
FOLLOWED = {
    "customer",
    "subscription",
    "invoice",
    "payment_method",
    "tax_id",
    "product",
    "price",
    "coupon",
    "promotion_code",
    "subscription_schedule",
}


# --- webhook events ----


def event_target(event: Mapping[str, Any]) -> Target | None:
    """The object an event is about, or None when the mirror does not follow it."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = obj.get("object")
    if kind == "discount":  # customer.discount.* / customer.subscription discount changes
        subscription = ref(obj.get("subscription"))
        if subscription:
            return ("subscription", subscription, None)
        customer = ref(obj.get("customer"))
        return ("customer", customer, None) if customer else None
    if kind not in FOLLOWED or not obj.get("id"):
        return None
    parent = ref(obj.get("customer")) if kind == "tax_id" else None
    return (kind, obj["id"], parent)


def _event_row(event: Mapping[str, Any], status: str, source: str) -> dict[str, Any]:
    target = event_target(event)
    return {
        "id": event["id"],
        "type": str(event.get("type") or "")[:128],
        "created": datetime.fromtimestamp(int(event.get("created") or 0), UTC),
        "object_type": target[0] if target else None,
        "object_id": target[1] if target else None,
        "object_parent": target[2] if target else None,
        "status": status,
        "source": source,
    }


async def receive_event(
    client: stripe.StripeClient, event: Mapping[str, Any], *, deadline: float = WEBHOOK_DEADLINE
) -> str:
    """Apply one verified webhook event; returns ``processed``, ``duplicate``, ``ignored`` or
    ``pending`` (Stripe could not be reached: ``reconcile`` applies it later)."""
    event_id = str(event["id"])
    found = await StripeEvent.select(StripeEvent.status).where(StripeEvent.id == event_id).first()
    if found is not None and found["status"] in DONE:
        return "duplicate"
    target = event_target(event)
    if target is None:
        async with db.write():
            await upsert(StripeEvent, [{**_event_row(event, "ignored", "webhook")}])
        return "ignored"
    if found is None:
        row = StripeEvent(**_event_row(event, "pending", "webhook"))
        await StripeEvent.insert(row).on_conflict(target=StripeEvent.id, action="DO NOTHING")
    batch = Batch()
    try:
        async with asyncio.timeout(deadline):
            await refetch(client, target, batch)
            await complete(client, batch)
    except (stripe.StripeError, TimeoutError) as error:
        log.warning("event %s left pending: %r", event_id, error)
        await StripeEvent.update(
            {
                StripeEvent.attempts: StripeEvent.attempts + 1,
                StripeEvent.last_error: (str(error) or type(error).__name__)[:1000],
            }
        ).where(StripeEvent.id == event_id)
        return "pending"
    async with db.write():
        await batch.apply()
        await StripeEvent.update(
            {
                StripeEvent.status: "processed",
                StripeEvent.processed_at: datetime.now(UTC),
                StripeEvent.attempts: StripeEvent.attempts + 1,
                StripeEvent.last_error: None,
            }
        ).where(StripeEvent.id == event_id)
    return "processed"


# --- reconcile ----


@dataclass
class ReconcileResult:
    since: int
    listed: int = 0
    applied: int = 0
    ignored: int = 0
    already: int = 0
    objects: int = 0
    watermark: int | None = None


async def newest_event_time(client: stripe.StripeClient) -> int | None:
    page = await client.v1.events.list_async({"limit": 1})
    return int(page.data[0].created) if page.data else None


async def default_since(client: stripe.StripeClient) -> int:
    """The watermark (minus a margin); else the last processed event; else 30 days before
    Stripe's newest event (Stripe keeps events for 30 days)."""
    cursor = await StripeSyncCursor.select().where(StripeSyncCursor.id == "events").first()
    if cursor is not None and cursor["watermark"] is not None:
        return int(cursor["watermark"]) - WATERMARK_MARGIN
    last = (
        await StripeEvent.select(StripeEvent.created)
        .where(StripeEvent.status == "processed")
        .order_by(StripeEvent.created, ascending=False)
        .first()
    )
    if last is not None:
        return int(last["created"].timestamp()) - WATERMARK_MARGIN
    newest = await newest_event_time(client)
    if newest is None:
        return int(datetime.now(UTC).timestamp())
    return newest - int(RETENTION.total_seconds())


async def save_watermark(watermark: int) -> None:
    await upsert(
        StripeSyncCursor,
        [{"id": "events", "watermark": watermark, "done": True, "updated_at": datetime.now(UTC)}],
    )


async def _apply_events(
    client: stripe.StripeClient, events: list[dict[str, Any]], result: ReconcileResult
) -> None:
    targets = {t for t in (event_target(e) for e in events) if t is not None}
    batch = Batch()
    await gather_limited(refetch(client, target, batch) for target in sorted(targets, key=str))
    await complete(client, batch)
    rows = []
    now = datetime.now(UTC)
    for event in events:
        followed = event_target(event) is not None
        row = _event_row(event, "processed" if followed else "ignored", "reconcile")
        rows.append({**row, "processed_at": now if followed else None})
        if followed:
            result.applied += 1
        else:
            result.ignored += 1
    async with db.write():
        await batch.apply()
        await upsert(StripeEvent, rows)
    result.objects += len(targets)


async def reconcile(
    client: stripe.StripeClient,
    *,
    since: int | None = None,
    progress: Callable[[ReconcileResult], None] | None = None,
    chunk: int = 100,
) -> ReconcileResult:
    """Apply every event Stripe has since ``since`` (default: ``default_since``) that the mirror
    has not processed, plus events left pending by webhooks; then move the watermark."""
    start = since if since is not None else await default_since(client)
    result = ReconcileResult(since=start)
    events = list(
        reversed(await list_all(client.v1.events.list_async, {"created": {"gte": start}}))
    )
    result.listed = len(events)
    seen: dict[str, str] = {}
    ids = [e["id"] for e in events]
    for offset in range(0, len(ids), 500):
        rows = await StripeEvent.select(StripeEvent.id, StripeEvent.status).where(
            StripeEvent.id.is_in(ids[offset : offset + 500])
        )
        seen.update({row["id"]: row["status"] for row in rows})
    todo = [e for e in events if seen.get(e["id"]) not in DONE]
    result.already = len(events) - len(todo)
    # Events recorded by a webhook that could not reach Stripe, older than ``start``.
    listed = set(ids)
    pending = await StripeEvent.select().where(StripeEvent.status == "pending")
    for row in pending:
        if row["id"] in listed:
            continue
        todo.insert(
            0,
            {
                "id": row["id"],
                "type": row["type"],
                "created": int(row["created"].timestamp()),
                "data": {
                    "object": {
                        "id": row["object_id"],
                        "object": row["object_type"],
                        "customer": row["object_parent"],
                    }
                },
            },
        )
    for offset in range(0, len(todo), chunk):
        await _apply_events(client, todo[offset : offset + chunk], result)
        if progress is not None:
            progress(result)
    if events:
        result.watermark = max(int(e["created"]) for e in events)
        async with db.write():
            await save_watermark(result.watermark)
    await StripeEvent.delete().where(
        StripeEvent.status.is_in(list(DONE))
        & (StripeEvent.created < datetime.now(UTC) - RETENTION - timedelta(days=5))
    )
    return result
