"""``portico stripe sync`` (and the settings page's **Sync now**): copy Stripe into the mirror.

Every object type is listed page by page (``starting_after``); each page is written together
with its ``StripeSyncCursor`` row, so an interrupted run resumes where it stopped, and a finished
pass makes the next run start a new pass (upserts: nothing changes if Stripe did not change).
Payment methods and tax ids are listed per customer of the mirror. ``app.billing.stripe_sync``
records each run (``StripeSyncRun``) and runs it in the background for the settings page.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe

from app import db
from app.billing.stripe_batch import Batch, upsert
from app.billing.stripe_client import is_missing, plain
from app.billing.stripe_events import newest_event_time, save_watermark
from app.billing.stripe_fetch import (
    PAGE,
    SUBSCRIPTION_LIST_EXPAND,
    complete,
    gather_limited,
    list_all,
)
from app.billing.stripe_tables import StripeSyncCursor
from app.billing.tables import Customer

# Called after each page with (object type, objects written so far, type done); may be async.
Progress = Callable[[str, int, bool], Awaitable[None] | None]


async def _report(progress: Progress, name: str, count: int, done: bool) -> None:
    result = progress(name, count, done)
    if inspect.isawaitable(result):
        await result


@dataclass(frozen=True)
class SyncStep:
    name: str
    per_customer: bool = False
    params: dict[str, Any] = field(default_factory=dict)


SYNC_STEPS = (
    SyncStep("products"),
    SyncStep("prices"),
    SyncStep("coupons"),
    SyncStep("promotion_codes"),
    SyncStep("customers"),
    SyncStep("subscriptions", params={"status": "all", "expand": SUBSCRIPTION_LIST_EXPAND}),
    SyncStep("subscription_schedules"),
    SyncStep("invoices"),
    SyncStep("payment_methods", per_customer=True),
    SyncStep("tax_ids", per_customer=True),
)
STEP_NAMES = [step.name for step in SYNC_STEPS]
CUSTOMERS_PER_WRITE = 25


def _lister(client: stripe.StripeClient, name: str) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    v1 = client.v1
    return {
        "products": v1.products.list_async,
        "prices": v1.prices.list_async,
        "coupons": v1.coupons.list_async,
        "promotion_codes": v1.promotion_codes.list_async,
        "customers": v1.customers.list_async,
        "subscriptions": v1.subscriptions.list_async,
        "subscription_schedules": v1.subscription_schedules.list_async,
        "invoices": v1.invoices.list_async,
    }[name]


async def _save_cursor(name: str, starting_after: str | None, count: int, done: bool) -> None:
    await upsert(
        StripeSyncCursor,
        [
            {
                "id": name,
                "starting_after": starting_after,
                "count": count,
                "done": done,
                "updated_at": datetime.now(UTC),
            }
        ],
    )


async def _sync_list(
    client: stripe.StripeClient, step: SyncStep, cursor: dict[str, Any] | None, progress: Progress
) -> int:
    fetch = _lister(client, step.name)
    starting_after = cursor["starting_after"] if cursor else None
    count = cursor["count"] if cursor else 0
    while True:
        params: dict[str, Any] = {**step.params, "limit": PAGE}
        if starting_after:
            params["starting_after"] = starting_after
        page = await fetch(params)
        data = [plain(obj) for obj in page.data]
        batch = Batch()
        batch.add_all(data)
        await complete(client, batch)
        done = not page.has_more or not data
        if data:
            starting_after = data[-1]["id"]
        async with db.write():
            await batch.apply()
            await _save_cursor(step.name, starting_after, count + len(data), done)
        count += len(data)
        await _report(progress, step.name, count, done)
        if done:
            return count


async def _customer_objects(
    client: stripe.StripeClient, step: str, customer_id: str
) -> list[dict[str, Any]] | None:
    v1 = client.v1
    try:
        if step == "payment_methods":
            return await list_all(lambda p: v1.customers.payment_methods.list_async(customer_id, p))
        return await list_all(lambda p: v1.customers.tax_ids.list_async(customer_id, p))
    except stripe.InvalidRequestError as error:
        if is_missing(error):
            return None  # deleted on Stripe since the customers step
        raise


async def _sync_per_customer(
    client: stripe.StripeClient, step: SyncStep, cursor: dict[str, Any] | None, progress: Progress
) -> int:
    """Payment methods and tax ids are listed per customer (in id order of the mirror); the
    cursor is the last customer done."""
    after = cursor["starting_after"] if cursor else None
    count = cursor["count"] if cursor else 0
    while True:
        query = Customer.select(Customer.id).where(Customer.deleted.eq(False))
        if after:
            query = query.where(Customer.id > after)
        ids = [row["id"] for row in await query.order_by(Customer.id).limit(CUSTOMERS_PER_WRITE)]
        results = await gather_limited(_customer_objects(client, step.name, cid) for cid in ids)
        batch = Batch()
        written = 0
        for customer_id, objects in zip(ids, results, strict=True):
            if objects is None:
                batch.customer_deleted(customer_id)
            elif step.name == "payment_methods":
                batch.replace_payment_methods(customer_id, objects)
            else:
                batch.replace_tax_ids(customer_id, objects)
            written += len(objects or [])
        await complete(client, batch)
        done = len(ids) < CUSTOMERS_PER_WRITE
        if ids:
            after = ids[-1]
        async with db.write():
            await batch.apply()
            await _save_cursor(step.name, after, count + written, done)
        count += written
        await _report(progress, step.name, count, done)
        if done:
            return count


async def backfill(
    client: stripe.StripeClient,
    *,
    restart: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Copy every object type from Stripe into the mirror (see the module docstring). Returns
    the number of objects written per type in this pass."""
    report = progress or (lambda name, count, done: None)
    rows = await StripeSyncCursor.select().where(StripeSyncCursor.id.is_in(STEP_NAMES))
    cursors = {row["id"]: row for row in rows}
    finished = len(cursors) == len(STEP_NAMES) and all(c["done"] for c in cursors.values())
    if restart or not cursors or finished:
        await StripeSyncCursor.delete().where(StripeSyncCursor.id.is_in(STEP_NAMES))
        cursors = {}
        has_watermark = await StripeSyncCursor.exists().where(StripeSyncCursor.id == "events")
        if not has_watermark:
            # Events before this pass are reflected by it: reconcile starts from here.
            newest = await newest_event_time(client)
            if newest is not None:
                await save_watermark(newest)
    counts: dict[str, int] = {}
    for step in SYNC_STEPS:
        cursor = cursors.get(step.name)
        if cursor is not None and cursor["done"]:
            counts[step.name] = cursor["count"]
            await _report(report, step.name, cursor["count"], True)
            continue
        sync = _sync_per_customer if step.per_customer else _sync_list
        counts[step.name] = await sync(client, step, cursor, report)
    return counts
