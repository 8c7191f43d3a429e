# ruff: noqa: S608 -- table names and "?" placeholders only; every value is a bound parameter
"""Customers of their own for the portal journeys, and temporary portal configuration changes.

The journeys change billing data (plans, cards, invoices, addresses), so each one works on a copy
of a demo customer made for it: the customer row and everything hanging off it (subscriptions and
their items, cards, invoices and their lines, invoice items, tax IDs, schedules) copied with fresh
ids under a new email. Copying again under the same email first deletes the earlier copy, so a
journey starts from the same state whatever ran before it. Written with stdlib sqlite3 straight
into the live server's database; the sandbox gateway reads the same tables.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import string
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

from e2e.support.database import PorticoDatabase

JENNY = "jenny.rosen@example.com"
ID_ALPHABET = string.ascii_letters + string.digits
# Invoice numbers of copies start with this (plus a per-copy tag): it sorts below the demo's
# "ACME-…" numbers, so the sandbox keeps numbering other customers' first invoices after those.
NUMBER_PREFIX = "A0E2E"
_NUMBER = re.compile(r"^(?P<prefix>.*?)-?(?P<sequence>\d+)$")


@dataclass(frozen=True)
class PortalCustomer:
    """A journey's own customer: the copy's ids, and what the journeys look for."""

    id: str
    email: str
    name: str
    subscription_id: str
    price_id: str
    quantity: int
    default_card_id: str
    open_invoice_id: str
    open_invoice_number: str
    paid_invoice_id: str
    paid_invoice_number: str


def new_id(like: str) -> str:
    """A fresh id with the prefix of ``like`` (``cus_…``, ``sub_…``, ``pm_…``)."""
    prefix = like.split("_", 1)[0] + "_" if "_" in like else ""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(24))


def _rows(connection: sqlite3.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in connection.execute(sql, params).fetchall()]


def _in(values: list[str]) -> str:
    return ",".join("?" * len(values))


def _insert(connection: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        names = list(row)
        columns = ", ".join(f'"{name}"' for name in names)
        connection.execute(
            f'INSERT INTO "{table}" ({columns}) VALUES ({_in(names)})',
            [row[name] for name in names],
        )


def _delete_customers(connection: sqlite3.Connection, email: str) -> None:
    """Every customer with ``email`` and what belongs to it (SQLite's foreign keys are off on
    this connection, so dependants are deleted explicitly)."""
    found = _rows(connection, "SELECT id FROM billing_customer WHERE email = ?", email)
    ids = [row["id"] for row in found]
    if not ids:
        return
    marks = _in(ids)
    subs = [
        r["id"]
        for r in _rows(
            connection, f"SELECT id FROM billing_subscription WHERE customer IN ({marks})", *ids
        )
    ]
    invoices = [
        r["id"]
        for r in _rows(
            connection, f"SELECT id FROM billing_invoice WHERE customer IN ({marks})", *ids
        )
    ]
    if subs:
        connection.execute(
            f"DELETE FROM billing_subscription_item WHERE subscription IN ({_in(subs)})", subs
        )
    if invoices:
        connection.execute(
            f"DELETE FROM billing_invoice_line WHERE invoice IN ({_in(invoices)})", invoices
        )
    for table in (
        "billing_subscription_schedule",
        "billing_invoice_item",
        "billing_invoice",
        "billing_subscription",
        "billing_payment_method",
        "billing_tax_id",
        "billing_customer",
    ):
        column = "id" if table == "billing_customer" else "customer"
        connection.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)


def _remap(row: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """Every value that is a copied object's id points at the copy instead."""
    return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in row.items()}


# A copy's subscription starts active, not canceling, paused or discounted, whatever happened to
# the original in earlier tests.
FRESH_SUBSCRIPTION = {
    "status": "active",
    "cancel_at_period_end": 0,
    "cancel_at": None,
    "canceled_at": None,
    "ended_at": None,
    "pause_collection_behavior": None,
    "pause_collection_resumes_at": None,
    "schedule": None,
    "discount_coupon": None,
    "cancellation_details_reason": None,
    "cancellation_details_feedback": None,
    "cancellation_details_comment": None,
}


def _price_id(connection: sqlite3.Connection, product: str, interval: str) -> str:
    found = _rows(
        connection,
        "SELECT p.id FROM billing_price p JOIN billing_product pr ON pr.id = p.product "
        "WHERE pr.name = ? AND p.recurring_interval = ? AND p.active = 1",
        product,
        interval,
    )
    assert len(found) == 1, f"expected one {product} {interval}ly price, found {len(found)}"
    return found[0]["id"]


def clone_customer(
    db: PorticoDatabase,
    email: str,
    *,
    source: str = JENNY,
    name: str | None = None,
    plan: tuple[str, str] = ("Team", "month"),
    quantity: int = 5,
) -> PortalCustomer:
    """Copy the (newest) customer with ``source``'s email, with all it owns, as a new customer
    with ``email``, in Jenny's demo shape whatever earlier tests did to the original: one active
    subscription to ``plan`` (product name, interval) with ``quantity``, and its newest
    one-off invoice open."""
    email = email.lower()
    tag = "".join(secrets.choice("0123456789ABCDEF") for _ in range(8))
    with closing(sqlite3.connect(db.path, timeout=30, isolation_level=None)) as connection:
        connection.row_factory = sqlite3.Row
        connection.execute("BEGIN IMMEDIATE")
        try:
            _delete_customers(connection, email)
            found = _rows(
                connection,
                "SELECT * FROM billing_customer WHERE email = ? ORDER BY created DESC LIMIT 1",
                source,
            )
            assert found, f"no customer {source} to copy"
            customer = found[0]
            cid = customer["id"]
            subs = _rows(connection, "SELECT * FROM billing_subscription WHERE customer = ?", cid)
            sub_ids = [s["id"] for s in subs]
            items = (
                _rows(
                    connection,
                    "SELECT * FROM billing_subscription_item "
                    f"WHERE subscription IN ({_in(sub_ids)})",
                    *sub_ids,
                )
                if sub_ids
                else []
            )
            cards = _rows(
                connection, "SELECT * FROM billing_payment_method WHERE customer = ?", cid
            )
            invoices = _rows(connection, "SELECT * FROM billing_invoice WHERE customer = ?", cid)
            invoice_ids = [i["id"] for i in invoices]
            lines = (
                _rows(
                    connection,
                    f"SELECT * FROM billing_invoice_line WHERE invoice IN ({_in(invoice_ids)})",
                    *invoice_ids,
                )
                if invoice_ids
                else []
            )
            invoice_items = _rows(
                connection, "SELECT * FROM billing_invoice_item WHERE customer = ?", cid
            )
            tax_ids = _rows(connection, "SELECT * FROM billing_tax_id WHERE customer = ?", cid)
            schedules = _rows(
                connection, "SELECT * FROM billing_subscription_schedule WHERE customer = ?", cid
            )

            copied = [customer, *subs, *items, *cards, *invoices, *lines]
            copied += [*invoice_items, *tax_ids, *schedules]
            ids = {row["id"]: new_id(row["id"]) for row in copied}

            new_customer = _remap(customer, ids)
            new_customer.update(email=email, name=name or customer["name"])
            if new_customer.get("shipping_name") == customer["name"]:
                new_customer["shipping_name"] = new_customer["name"]
            _insert(connection, "billing_customer", [new_customer])
            _insert(connection, "billing_payment_method", [_remap(r, ids) for r in cards])
            _insert(
                connection,
                "billing_subscription",
                [{**_remap(r, ids), **FRESH_SUBSCRIPTION} for r in subs],
            )
            price = _price_id(connection, *plan)
            new_items = [{**_remap(r, ids), "price": price, "quantity": quantity} for r in items]
            _insert(connection, "billing_subscription_item", new_items)
            new_invoices = []
            for row in invoices:
                copy = _remap(row, ids)
                match = _NUMBER.match(row["number"] or "")
                if match is not None:
                    copy["number"] = f"{NUMBER_PREFIX}{tag}-{match['sequence']}"
                new_invoices.append(copy)
            one_offs = [i for i in new_invoices if i["subscription"] is None]
            assert one_offs, f"{source} has no one-off invoice to leave open"
            newest_one_off = max(one_offs, key=lambda i: i["created"])
            newest_one_off.update(
                status="open",
                amount_paid=0,
                amount_remaining=newest_one_off["amount_due"],
                status_transitions_paid_at=None,
            )
            _insert(connection, "billing_invoice", new_invoices)
            _insert(connection, "billing_invoice_line", [_remap(r, ids) for r in lines])
            _insert(connection, "billing_invoice_item", [_remap(r, ids) for r in invoice_items])
            _insert(connection, "billing_tax_id", [_remap(r, ids) for r in tax_ids])
            _insert(
                connection, "billing_subscription_schedule", [_remap(r, ids) for r in schedules]
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    assert len(subs) == 1, f"expected one subscription, found {len(subs)}"
    assert len(new_items) == 1, f"expected one subscription item, found {len(new_items)}"
    newest = sorted(new_invoices, key=lambda i: i["created"], reverse=True)
    open_invoice = next(i for i in newest if i["status"] == "open")
    paid_invoice = next(i for i in newest if i["status"] == "paid")
    return PortalCustomer(
        id=new_customer["id"],
        email=email,
        name=new_customer["name"],
        subscription_id=ids[subs[0]["id"]],
        price_id=new_items[0]["price"],
        quantity=new_items[0]["quantity"],
        default_card_id=new_customer["invoice_settings_default_payment_method"],
        open_invoice_id=open_invoice["id"],
        open_invoice_number=open_invoice["number"],
        paid_invoice_id=paid_invoice["id"],
        paid_invoice_number=paid_invoice["number"],
    )


def journey_email(test_name: str, js: bool) -> str:
    """``e2e-<test>-<js-on|js-off>@example.com``: one customer per test and JavaScript mode."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"e2e-{slug[:40]}-{'js-on' if js else 'js-off'}@example.com"


# -- portal configuration ---------------------------------------------------------------------
def default_configuration(db: PorticoDatabase) -> sqlite3.Row:
    rows = db.query("SELECT id, features FROM portal_configuration WHERE is_default = 1")
    assert len(rows) == 1, f"expected one default portal configuration, found {len(rows)}"
    return rows[0]


def features(db: PorticoDatabase) -> dict[str, Any]:
    return json.loads(default_configuration(db)["features"])


@contextmanager
def changed_features(
    db: PorticoDatabase, change: Callable[[dict[str, Any]], None]
) -> Iterator[dict[str, Any]]:
    """The default configuration's features JSON with ``change`` applied, put back afterwards
    (the server reads the configuration on every request)."""
    row = default_configuration(db)
    original = row["features"]
    data = json.loads(original)
    change(data)
    db.execute(
        "UPDATE portal_configuration SET features = ? WHERE id = ?", json.dumps(data), row["id"]
    )
    try:
        yield data
    finally:
        db.execute("UPDATE portal_configuration SET features = ? WHERE id = ?", original, row["id"])
