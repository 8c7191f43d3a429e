"""Reading Stripe into a ``Batch``: single objects, one customer, the customers of an email.

The payload Stripe pushes is never trusted: objects are (re-)fetched, so what a batch holds is
Stripe's current state.

- ``complete(client, batch)``: fetch what a batch refers to but the mirror lacks (customers,
  products, prices, coupons) and invoice lines beyond the embedded first page.
- ``refetch(client, target, batch)``: Stripe's current version of one object (or its deletion).
- ``customer_batch`` / ``discover_batch``: one customer's objects (refresh at sign-in) / the
  customers with an email address and their subscriptions.
- ``list_all`` / ``gather_limited``: every page of a list; bounded concurrency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import stripe

from app.billing.stripe_batch import Batch
from app.billing.stripe_client import is_missing, plain

T = TypeVar("T")
PAGE = 100
CONCURRENCY = 8  # parallel requests to Stripe (well under its rate limits)
RECENT_INVOICES = 24
DISCOVER_LIMIT = 10  # customers per email address

# Expansions so one response carries what the mirror needs (Stripe allows 4 levels).
SUBSCRIPTION_EXPAND = ["items.data.price.product", "latest_invoice", "discounts", "schedule"]
SUBSCRIPTION_LIST_EXPAND = ["data.discounts", "data.schedule"]

Target = tuple[str, str, str | None]  # (object type, id, parent id: a tax id's customer)


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
