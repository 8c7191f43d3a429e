"""The benchmark's data set: customers, their subscriptions, cards and invoices, one active login
link, and signed-in sessions, written in bulk into a freshly migrated database.

Rows go in through Piccolo's multi-row ``insert`` (hundreds of rows per statement, in one
transaction per table), never one request per row. Everything is deterministic except the session
tokens, which are random like real ones; the tokens are returned for the load generator.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from piccolo.table import Table

from app import db
from app.billing.tables import (
    Customer,
    Invoice,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)
from app.configuration.features import Features, encode
from app.configuration.tables import PortalConfiguration
from app.login.tables import WebSession

CHUNK = 500  # rows per INSERT statement (SQLite allows 32,766 parameters per statement)
EMAIL_DOMAIN = "bench.example"
PLANS = (  # product name, monthly price in cents
    ("Starter", 900),
    ("Team", 2900),
    ("Business", 9900),
)


class Dataset(msgspec.Struct, kw_only=True):
    database_url: str
    login_token: str
    configuration_id: str
    customers: int
    invoices: int
    emails: list[str]  # every customer's email, in customer order
    session_tokens: list[str]  # cookie values of signed-in customers
    build_seconds: float = 0.0


def email_of(index: int) -> str:
    return f"customer{index:06d}@{EMAIL_DOMAIN}"


def _chunks(rows: Sequence[Table], size: int = CHUNK) -> Iterator[Sequence[Table]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def _insert(table: type[Table], rows: Sequence[Table]) -> None:
    async with db.write():
        for chunk in _chunks(rows):
            await table.insert(*chunk)


async def migrate(url: str) -> Any:
    """A migrated, bound and started engine for ``url`` (Piccolo's per-migration lines hidden)."""
    engine = db.make_engine(url)
    await db.start(engine)
    with contextlib.redirect_stdout(io.StringIO()):
        await db.migrate(engine)
    return engine


async def build(
    url: str,
    *,
    customers: int = 10_000,
    invoices: int = 100_000,
    sessions: int = 2_000,
    now: datetime | None = None,
) -> Dataset:
    """Migrate a fresh database at ``url`` and fill it. ``invoices`` are spread evenly over the
    customers (10 each at full scale, newest 40 days apart, a tenth of the newest still open)."""
    started = time.perf_counter()
    now = now or datetime.now(UTC).replace(microsecond=0)
    engine = await migrate(url)
    try:
        token = secrets.token_urlsafe(24)
        configuration_id = "bpc_bench"
        await _insert(
            PortalConfiguration,
            [
                PortalConfiguration(
                    id=configuration_id,
                    name="Benchmark",
                    is_default=True,
                    active=True,
                    login_page_enabled=True,
                    login_page_token=token,
                    business_name="Bench Cloud",
                    features=encode(Features()),
                    created=now,
                    updated=now,
                )
            ],
        )
        await _insert(
            Product,
            [
                Product(id=f"prod_bench{i}", name=name, created=now)
                for i, (name, _) in enumerate(PLANS)
            ],
        )
        await _insert(
            Price,
            [
                Price(
                    id=f"price_bench{i}",
                    product=f"prod_bench{i}",
                    currency="usd",
                    unit_amount=amount,
                    type="recurring",
                    recurring_interval="month",
                    recurring_interval_count=1,
                    recurring_usage_type="licensed",
                    created=now,
                )
                for i, (_, amount) in enumerate(PLANS)
            ],
        )
        emails = [email_of(i) for i in range(customers)]
        customer_rows, cards, subs, items = [], [], [], []
        period_start = now - timedelta(days=10)
        for i, email in enumerate(emails):
            cid, pm = f"cus_bench{i:06d}", f"pm_bench{i:06d}"
            customer_rows.append(
                Customer(
                    id=cid,
                    email=email,
                    name=f"Customer {i}",
                    address_country="US",
                    invoice_settings_default_payment_method=pm,
                    currency="usd",
                    created=now - timedelta(days=400, minutes=i),
                )
            )
            cards.append(
                PaymentMethod(
                    id=pm,
                    customer=cid,
                    type="card",
                    card_brand="visa",
                    card_last4=f"{i % 10000:04d}",
                    card_exp_month=(i % 12) + 1,
                    card_exp_year=2030,
                    card_funding="credit",
                    created=now - timedelta(days=400),
                )
            )
            plan = i % len(PLANS)
            sid = f"sub_bench{i:06d}"
            subs.append(
                Subscription(
                    id=sid,
                    customer=cid,
                    status="active" if i % 20 else "canceled",
                    currency="usd",
                    created=now - timedelta(days=400),
                    start_date=now - timedelta(days=400),
                    current_period_start=period_start,
                    current_period_end=period_start + timedelta(days=30),
                    canceled_at=None if i % 20 else now - timedelta(days=5),
                    ended_at=None if i % 20 else now - timedelta(days=5),
                    default_payment_method=pm,
                )
            )
            items.append(
                SubscriptionItem(
                    id=f"si_bench{i:06d}",
                    subscription=sid,
                    price=f"price_bench{plan}",
                    quantity=1 + i % 3,
                    current_period_start=period_start,
                    current_period_end=period_start + timedelta(days=30),
                    created=now - timedelta(days=400),
                )
            )
        await _insert(Customer, customer_rows)
        await _insert(PaymentMethod, cards)
        await _insert(Subscription, subs)
        await _insert(SubscriptionItem, items)
        del customer_rows, cards, subs, items

        per_customer = max(1, invoices // max(customers, 1))
        invoice_rows: list[Invoice] = []
        for n in range(invoices):
            i, k = n % customers, n // customers  # k: 0 is the newest
            amount = PLANS[i % len(PLANS)][1] * (1 + i % 3)
            created = now - timedelta(days=40 * k + 1, minutes=i % 1440)
            open_ = k == 0 and i % 10 == 0
            invoice_rows.append(
                Invoice(
                    id=f"in_bench{n:07d}",
                    customer=f"cus_bench{i:06d}",
                    subscription=f"sub_bench{i:06d}",
                    number=f"BENCH-{i:06d}-{per_customer - k:04d}",
                    status="open" if open_ else "paid",
                    currency="usd",
                    subtotal=amount,
                    total=amount,
                    amount_due=amount,
                    amount_paid=0 if open_ else amount,
                    amount_remaining=amount if open_ else 0,
                    billing_reason="subscription_cycle",
                    created=created,
                    due_date=None,
                    period_start=created - timedelta(days=30),
                    period_end=created,
                    status_transitions_paid_at=None if open_ else created,
                )
            )
            if len(invoice_rows) >= 20 * CHUNK:
                await _insert(Invoice, invoice_rows)
                invoice_rows = []
        await _insert(Invoice, invoice_rows)

        tokens = [secrets.token_urlsafe(32) for _ in range(min(sessions, customers))]
        await _insert(
            WebSession,
            [
                WebSession(
                    id=hashlib.sha256(t.encode()).hexdigest(),
                    kind="customer",
                    subject=f"cus_bench{i:06d}",
                    configuration=configuration_id,
                    created_at=now,
                    last_seen_at=now,
                    absolute_expires_at=now + timedelta(hours=12),
                    data={},
                    ip="127.0.0.1",
                    user_agent="portico-bench",
                )
                for i, t in enumerate(tokens)
            ],
        )
        # Planner statistics and, on PostgreSQL, no dead row versions, as a live database has
        # them: the bulk inserts updated each customer's portal_stamp row a dozen times (triggers),
        # and autovacuum would otherwise clean up in the middle of the measurements.
        await engine.run_ddl("VACUUM ANALYZE" if db.is_postgres(engine) else "ANALYZE")
    finally:
        await db.stop(engine)
    return Dataset(
        database_url=url,
        login_token=token,
        configuration_id=configuration_id,
        customers=customers,
        invoices=invoices,
        emails=emails,
        session_tokens=tokens,
        build_seconds=time.perf_counter() - started,
    )
