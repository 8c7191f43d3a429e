"""Keeping the mirror equal to Stripe: re-fetching, backfill, webhook events and reconcile.

Everything here reads Stripe and writes the mirror through ``sync.Batch`` (one transaction per
batch, idempotent upserts). The payload of an event is never trusted: the object an event names is
re-fetched, so duplicated, late or out-of-order deliveries all end with Stripe's current state.

- ``complete(client, batch)``: fetch what a batch refers to but the mirror lacks (customers,
  products, prices, coupons) and invoice lines beyond the embedded first page.
- ``customer_batch`` / ``discover_batch``: one customer's objects (refresh at sign-in) / the
  customers with an email address and their subscriptions.
- ``receive_event``: a verified webhook event → recorded in ``StripeEvent`` (dedup by id), its
  object re-fetched and written with the event marked ``processed``, in one transaction. If
  Stripe cannot be reached the event stays ``pending`` (reconcile applies it later).
- ``backfill``: ``portico stripe sync``: every object type page by page (``starting_after``),
  each page written together with its cursor, so an interrupted run resumes where it stopped;
  a finished pass makes the next run start a new pass (upserts: nothing changes if Stripe did
  not change).
- ``reconcile``: ``portico stripe reconcile``: list events since the watermark (or ``since``),
  apply those not processed yet (grouped: each object re-fetched once), move the watermark.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import stripe

from app import db
from app.billing.stripe_client import is_missing, plain
from app.billing.stripe_tables import StripeEvent, StripeSyncCursor
from app.billing.sync import Batch, ref, upsert
from app.billing.tables import Customer

log = logging.getLogger("portico.stripe")

T = TypeVar("T")
PAGE = 100
CONCURRENCY = 8  # parallel requests to Stripe (well under its rate limits)
RECENT_INVOICES = 24
DISCOVER_LIMIT = 10  # customers per email address
WEBHOOK_DEADLINE = 8.0  # seconds to re-fetch an event's object before answering Stripe
RETENTION = timedelta(days=30)  # Stripe keeps events 30 days
WATERMARK_MARGIN = 60  # seconds re-read before the watermark (events are listed eventually)

# Expansions so one response carries what the mirror needs (Stripe allows 4 levels).
SUBSCRIPTION_EXPAND = ["items.data.price.product", "latest_invoice", "discounts", "schedule"]
SUBSCRIPTION_LIST_EXPAND = ["data.discounts", "data.schedule"]
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

Target = tuple[str, str, str | None]  # (object type, id, parent id: a tax id's customer)
Progress = Callable[[str, int, bool], None]


async def gather_limited(coroutines: Iterable[Awaitable[T]], limit: int | None = None) -> list[T]:
    semaphore = asyncio.Semaphore(limit or CONCURRENCY)

    async def run(coroutine: Awaitable[T]) -> T:
        async with semaphore:
            return await coroutine

    return list(await asyncio.gather(*(run(c) for c in coroutines)))


async def list_all(
    fetch: Callable[[dict[str, Any]], Awaitable[Any]], params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every object of a list endpoint, following ``starting_after``."""
    out: list[dict[str, Any]] = []
    starting_after = None
    while True:
        query: dict[str, Any] = {**(params or {}), "limit": PAGE}
        if starting_after:
            query["starting_after"] = starting_after
        page = await fetch(query)
        data = [plain(obj) for obj in page.data]
        out.extend(data)
        if not page.has_more or not data:
            return out
        starting_after = data[-1]["id"]


# --- fetching single objects ----


async def fetch_subscription(client: stripe.StripeClient, subscription_id: str) -> dict[str, Any]:
    return plain(
        await client.v1.subscriptions.retrieve_async(
            subscription_id, {"expand": SUBSCRIPTION_EXPAND}
        )
    )


async def _fetch_reference(
    client: stripe.StripeClient, kind: str, object_id: str, batch: Batch
) -> None:
    v1 = client.v1
    try:
        if kind == "customer":
            batch.add(plain(await v1.customers.retrieve_async(object_id)))
        elif kind == "product":
            batch.add(plain(await v1.products.retrieve_async(object_id)))
        elif kind == "price":
            batch.add(plain(await v1.prices.retrieve_async(object_id, {"expand": ["product"]})))
        elif kind == "coupon":
            batch.add(plain(await v1.coupons.retrieve_async(object_id)))
    except stripe.InvalidRequestError as error:
        if not is_missing(error):
            raise
        batch.stub(kind, object_id)


async def complete(client: stripe.StripeClient, batch: Batch, *, rounds: int = 4) -> None:
    """Fetch invoice lines that did not fit in the embedded list, then every referenced object
    the mirror lacks (a price's product, a subscription's customer, …)."""
    partial = list(batch.partial_lines.values())
    if partial:
        results = await gather_limited(
            list_all(lambda p, i=invoice["id"]: client.v1.invoices.line_items.list_async(i, p))
            for invoice in partial
        )
        for invoice, lines in zip(partial, results, strict=True):
            batch.add_invoice_lines(invoice, lines)
    for _ in range(rounds):
        missing = await batch.missing()
        if not missing:
            return
        await gather_limited(
            _fetch_reference(client, kind, object_id, batch)
            for kind, ids in sorted(missing.items())
            for object_id in sorted(ids)
        )
    raise RuntimeError(f"references still missing after {rounds} rounds: {await batch.missing()}")


async def refetch(client: stripe.StripeClient, target: Target, batch: Batch) -> None:
    """Put Stripe's current version of ``target`` into ``batch`` (or its deletion)."""
    kind, object_id, parent = target
    v1 = client.v1
    try:
        if kind == "customer":
            batch.add(plain(await v1.customers.retrieve_async(object_id)))
        elif kind == "subscription":
            batch.add(await fetch_subscription(client, object_id))
        elif kind == "invoice":
            batch.add(plain(await v1.invoices.retrieve_async(object_id)))
        elif kind == "payment_method":
            batch.add(plain(await v1.payment_methods.retrieve_async(object_id)))
        elif kind == "tax_id":
            if not parent:
                return
            batch.add(plain(await v1.customers.tax_ids.retrieve_async(parent, object_id)))
        elif kind == "product":
            batch.add(plain(await v1.products.retrieve_async(object_id)))
        elif kind == "price":
            batch.add(plain(await v1.prices.retrieve_async(object_id)))
        elif kind == "coupon":
            batch.add(plain(await v1.coupons.retrieve_async(object_id)))
        elif kind == "promotion_code":
            batch.add(plain(await v1.promotion_codes.retrieve_async(object_id)))
        elif kind == "subscription_schedule":
            batch.add(plain(await v1.subscription_schedules.retrieve_async(object_id)))
    except stripe.InvalidRequestError as error:
        if not is_missing(error):
            raise
        _gone(batch, kind, object_id)


def _gone(batch: Batch, kind: str, object_id: str) -> None:
    """Stripe no longer has the object (deleted customers answer 404 or ``deleted: true``)."""
    if kind == "customer":
        batch.customer_deleted(object_id)
    elif kind == "tax_id":
        batch.tax_id_deleted(object_id)
    elif kind == "payment_method":
        batch.payment_method_detached(object_id)
    elif kind == "invoice":
        batch.invoice_deleted(object_id)
    elif kind == "product":
        batch.product_deleted(object_id)
    elif kind == "coupon":
        batch.coupon_deleted(object_id)


# --- one customer ----


async def customer_batch(client: stripe.StripeClient, customer_id: str) -> Batch:
    """Everything the portal shows for one customer, as Stripe has it now: the customer, all
    their subscriptions, recent invoices, attached payment methods and tax ids."""
    v1 = client.v1
    batch = Batch()
    results = await asyncio.gather(
        v1.customers.retrieve_async(customer_id),
        list_all(
            v1.subscriptions.list_async,
            {"customer": customer_id, "status": "all", "expand": SUBSCRIPTION_LIST_EXPAND},
        ),
        v1.invoices.list_async({"customer": customer_id, "limit": RECENT_INVOICES}),
        list_all(lambda p: v1.customers.payment_methods.list_async(customer_id, p)),
        list_all(lambda p: v1.customers.tax_ids.list_async(customer_id, p)),
        return_exceptions=True,
    )
    customer = results[0]
    if isinstance(customer, BaseException):
        if is_missing(customer):
            batch.customer_deleted(customer_id)
            return batch
        raise customer
    customer = plain(customer)
    batch.add(customer)
    if customer.get("deleted"):
        return batch
    for result in results[1:]:
        if isinstance(result, BaseException):
            raise result
    subscriptions, invoices, methods, tax_ids = results[1:]
    batch.add_all(subscriptions)
    batch.add_all(plain(invoice) for invoice in invoices.data)
    batch.replace_payment_methods(customer_id, methods)
    batch.replace_tax_ids(customer_id, tax_ids)
    await complete(client, batch)
    return batch


async def discover_batch(client: stripe.StripeClient, email: str) -> tuple[Batch, list[str]]:
    """The customers Stripe has with this email (as typed and lower case: Stripe's filter is
    case-sensitive), newest first, with all their subscriptions."""
    address = email.strip()
    batch = Batch()
    if not address:
        return batch, []
    variants = list(dict.fromkeys([address, address.lower()]))
    pages = await asyncio.gather(
        *(client.v1.customers.list_async({"email": v, "limit": DISCOVER_LIMIT}) for v in variants)
    )
    found: dict[str, dict[str, Any]] = {}
    for page in pages:
        for customer in page.data:
            found.setdefault(customer.id, plain(customer))
    customers = sorted(found.values(), key=lambda c: c.get("created") or 0, reverse=True)
    customers = customers[:DISCOVER_LIMIT]
    batch.add_all(customers)
    subscriptions = await gather_limited(
        list_all(
            client.v1.subscriptions.list_async,
            {"customer": c["id"], "status": "all", "expand": SUBSCRIPTION_LIST_EXPAND},
        )
        for c in customers
    )
    for subs in subscriptions:
        batch.add_all(subs)
    await complete(client, batch)
    return batch, [c["id"] for c in customers]


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


async def _newest_event_time(client: stripe.StripeClient) -> int | None:
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
    newest = await _newest_event_time(client)
    if newest is None:
        return int(datetime.now(UTC).timestamp())
    return newest - int(RETENTION.total_seconds())


async def _save_watermark(watermark: int) -> None:
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
            await _save_watermark(result.watermark)
    await StripeEvent.delete().where(
        StripeEvent.status.is_in(list(DONE))
        & (StripeEvent.created < datetime.now(UTC) - RETENTION - timedelta(days=5))
    )
    return result


# --- backfill ----


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
        progress(step.name, count, done)
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
        progress(step.name, count, done)
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
            newest = await _newest_event_time(client)
            if newest is not None:
                await _save_watermark(newest)
    counts: dict[str, int] = {}
    for step in SYNC_STEPS:
        cursor = cursors.get(step.name)
        if cursor is not None and cursor["done"]:
            counts[step.name] = cursor["count"]
            report(step.name, cursor["count"], True)
            continue
        sync = _sync_per_customer if step.per_customer else _sync_list
        counts[step.name] = await sync(client, step, cursor, report)
    return counts
