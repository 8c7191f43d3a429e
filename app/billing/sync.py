"""Stripe objects → mirror rows, and idempotent writes of a batch of them.

``row_for_*`` map one Stripe object (a plain dict, current API shape, older shapes tolerated) to
the columns of its mirror table (``app.billing.tables``: Stripe's field names, nested objects
flattened with ``_``). ``Batch`` collects everything one action, webhook, refresh or backfill page
learned from Stripe:

- ``batch.add(obj)`` takes any Stripe object and the objects expanded inside it (a subscription's
  items, prices, products, latest invoice, discounts, schedule; an invoice's lines; …);
- lists that are complete replace what the mirror holds (``replace_payment_methods``,
  ``replace_tax_ids``; a subscription's items and a complete invoice's lines always do);
- deletions: ``customer_deleted`` (the row keeps ``deleted = true``), ``payment_method_detached``
  (``customer`` becomes null), ``tax_id_deleted`` / ``invoice_deleted`` (rows removed),
  ``product_deleted`` (inactive), ``coupon_deleted`` (no longer valid);
- ``await batch.missing()`` names the referenced customers, products, prices and coupons that
  neither the batch nor the mirror has (the caller fetches them: the mirror's foreign keys need
  them first);
- ``await batch.apply()`` writes it all, parents before children, inside the caller's
  ``db.write()`` transaction; ``await batch.commit()`` opens one. Every write is an upsert
  (``INSERT … ON CONFLICT (id) DO UPDATE`` on SQLite and PostgreSQL), so applying the same
  objects twice changes nothing.

Columns that are not Stripe's (``Customer.time_zone``) are never written here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from piccolo.columns import Varchar
from piccolo.table import Table

from app import db
from app.billing.tables import (
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    PromotionCode,
    Subscription,
    SubscriptionItem,
    SubscriptionSchedule,
    TaxId,
)

Obj = Mapping[str, Any]
CHUNK = 200  # rows per INSERT statement


# --- small helpers ----


def ts(value: Any) -> datetime | None:
    """A Stripe unix time as an aware UTC datetime."""
    if value is None or value == "":
        return None
    return datetime.fromtimestamp(int(value), UTC)


def ref(value: Any) -> str | None:
    """The id of a reference that may be an id or an expanded object."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return value.get("id")
    return str(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _address(prefix: str, address: Any) -> dict[str, Any]:
    address = address if isinstance(address, Mapping) else {}
    return {
        f"{prefix}line1": _text(address.get("line1")),
        f"{prefix}line2": _text(address.get("line2")),
        f"{prefix}city": _text(address.get("city")),
        f"{prefix}state": _text(address.get("state")),
        f"{prefix}postal_code": _text(address.get("postal_code")),
        f"{prefix}country": _text(address.get("country")),
    }


def _metadata(obj: Obj) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


# --- one Stripe object → one row ----


def row_for_customer(c: Obj) -> dict[str, Any]:
    shipping = c.get("shipping") or {}
    settings = c.get("invoice_settings") or {}
    return {
        "id": c["id"],
        "email": _text(c.get("email")),
        "name": _text(c.get("name")),
        "phone": _text(c.get("phone")),
        **_address("address_", c.get("address")),
        "shipping_name": _text(shipping.get("name")),
        "shipping_phone": _text(shipping.get("phone")),
        **_address("shipping_address_", shipping.get("address")),
        "invoice_settings_default_payment_method": ref(settings.get("default_payment_method")),
        "currency": _text(c.get("currency")),
        "preferred_locales": list(c.get("preferred_locales") or []),
        "created": ts(c.get("created")) or datetime.now(UTC),
        "livemode": bool(c.get("livemode")),
        "deleted": False,
        "metadata": _metadata(c),
    }


def row_for_product(p: Obj) -> dict[str, Any]:
    return {
        "id": p["id"],
        "name": p.get("name") or p["id"],
        "description": _text(p.get("description")),
        "active": bool(p.get("active", True)),
        "unit_label": _text(p.get("unit_label")),
        "created": ts(p.get("created")) or datetime.now(UTC),
        "livemode": bool(p.get("livemode")),
        "metadata": _metadata(p),
    }


def row_for_price(p: Obj) -> dict[str, Any]:
    recurring = p.get("recurring") or {}
    return {
        "id": p["id"],
        "product": ref(p.get("product")),
        "active": bool(p.get("active", True)),
        "currency": p.get("currency") or "usd",
        "unit_amount": p.get("unit_amount"),
        "type": p.get("type") or ("recurring" if recurring else "one_time"),
        "recurring_interval": recurring.get("interval"),
        "recurring_interval_count": recurring.get("interval_count") or 1,
        "recurring_usage_type": recurring.get("usage_type"),
        "tax_behavior": p.get("tax_behavior") or "unspecified",
        "nickname": _text(p.get("nickname")),
        "lookup_key": _text(p.get("lookup_key")),
        "created": ts(p.get("created")) or datetime.now(UTC),
        "livemode": bool(p.get("livemode")),
        "metadata": _metadata(p),
    }


def _item_period(sub: Obj) -> tuple[Any, Any]:
    """Current API versions keep the period on the items; older ones on the subscription."""
    items = (sub.get("items") or {}).get("data") or []
    if items and items[0].get("current_period_start") is not None:
        return items[0]["current_period_start"], items[0]["current_period_end"]
    return sub.get("current_period_start"), sub.get("current_period_end")


def discount_coupon(discount: Any) -> str | None:
    """The coupon id of an expanded discount (``source.coupon`` now, ``coupon`` before)."""
    if not isinstance(discount, Mapping):
        return None
    source = discount.get("source") or {}
    return ref(source.get("coupon")) or ref(discount.get("coupon"))


def row_for_subscription(s: Obj) -> dict[str, Any]:
    start, end = _item_period(s)
    pause = s.get("pause_collection") or {}
    details = s.get("cancellation_details") or {}
    row: dict[str, Any] = {
        "id": s["id"],
        "customer": ref(s.get("customer")),
        "status": s.get("status") or "active",
        "currency": s.get("currency") or "usd",
        "collection_method": s.get("collection_method") or "charge_automatically",
        "created": ts(s.get("created")) or datetime.now(UTC),
        "start_date": ts(s.get("start_date") or s.get("created")) or datetime.now(UTC),
        "current_period_start": ts(start) or ts(s.get("created")) or datetime.now(UTC),
        "current_period_end": ts(end) or ts(s.get("created")) or datetime.now(UTC),
        "billing_cycle_anchor": ts(s.get("billing_cycle_anchor")),
        "cancel_at_period_end": bool(s.get("cancel_at_period_end")),
        "cancel_at": ts(s.get("cancel_at")),
        "canceled_at": ts(s.get("canceled_at")),
        "ended_at": ts(s.get("ended_at")),
        "trial_start": ts(s.get("trial_start")),
        "trial_end": ts(s.get("trial_end")),
        "pause_collection_behavior": _text(pause.get("behavior")),
        "pause_collection_resumes_at": ts(pause.get("resumes_at")),
        "default_payment_method": ref(s.get("default_payment_method")),
        "schedule": ref(s.get("schedule")),
        "latest_invoice": ref(s.get("latest_invoice")),
        "cancellation_details_reason": _text(details.get("reason")),
        "cancellation_details_feedback": _text(details.get("feedback")),
        "cancellation_details_comment": _text(details.get("comment")),
        "livemode": bool(s.get("livemode")),
        "metadata": _metadata(s),
    }
    discounts = s.get("discounts")
    legacy = s.get("discount")
    if isinstance(discounts, list) and all(isinstance(d, Mapping) for d in discounts):
        row["discount_coupon"] = discount_coupon(discounts[0]) if discounts else None
        if not discounts and isinstance(legacy, Mapping):
            row["discount_coupon"] = discount_coupon(legacy)
    elif discounts is None and "discount" in s:
        row["discount_coupon"] = discount_coupon(legacy)
    # else: discounts are unexpanded ids; the mirror keeps the coupon it knows.
    return row


def row_for_subscription_item(item: Obj, subscription_id: str, sub: Obj) -> dict[str, Any]:
    start, end = _item_period(sub)
    return {
        "id": item["id"],
        "subscription": subscription_id,
        "price": ref(item.get("price")),
        "quantity": item.get("quantity") if item.get("quantity") is not None else 1,
        "current_period_start": ts(item.get("current_period_start") or start) or datetime.now(UTC),
        "current_period_end": ts(item.get("current_period_end") or end) or datetime.now(UTC),
        "created": ts(item.get("created")) or datetime.now(UTC),
        "metadata": _metadata(item),
    }


def _invoice_subscription(i: Obj) -> str | None:
    parent = i.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return ref(details.get("subscription")) or ref(i.get("subscription"))


def row_for_invoice(i: Obj) -> dict[str, Any]:
    taxes = i.get("total_taxes")
    tax = sum(t.get("amount") or 0 for t in taxes) if isinstance(taxes, list) else i.get("tax")
    transitions = i.get("status_transitions") or {}
    return {
        "id": i["id"],
        "customer": ref(i.get("customer")),
        "subscription": _invoice_subscription(i),
        "number": _text(i.get("number")),
        "status": i.get("status") or "draft",
        "currency": i.get("currency") or "usd",
        "subtotal": i.get("subtotal") or 0,
        "tax": tax or 0,
        "total": i.get("total") or 0,
        "amount_due": i.get("amount_due") or 0,
        "amount_paid": i.get("amount_paid") or 0,
        "amount_remaining": i.get("amount_remaining") or 0,
        "collection_method": i.get("collection_method") or "charge_automatically",
        "billing_reason": _text(i.get("billing_reason")),
        "description": _text(i.get("description")),
        "created": ts(i.get("created")) or datetime.now(UTC),
        "due_date": ts(i.get("due_date")),
        "period_start": ts(i.get("period_start")),
        "period_end": ts(i.get("period_end")),
        "status_transitions_paid_at": ts(transitions.get("paid_at")),
        "hosted_invoice_url": _text(i.get("hosted_invoice_url")),
        "invoice_pdf": _text(i.get("invoice_pdf")),
        "livemode": bool(i.get("livemode")),
        "metadata": _metadata(i),
    }


def line_price(line: Obj) -> str | None:
    pricing = line.get("pricing") or {}
    details = pricing.get("price_details") or {}
    return ref(details.get("price")) or ref(line.get("price"))


def line_is_proration(line: Obj) -> bool:
    parent = line.get("parent") or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        details = parent.get(key) or {}
        if details.get("proration"):
            return True
    return bool(line.get("proration"))


def row_for_invoice_line(
    line: Obj, invoice_id: str, position: int, currency: str
) -> dict[str, Any]:
    period = line.get("period") or {}
    return {
        "id": line["id"],
        "invoice": invoice_id,
        "description": _text(line.get("description")),
        "amount": line.get("amount") or 0,
        "currency": line.get("currency") or currency,
        "quantity": line.get("quantity"),
        "price": line_price(line),
        "proration": line_is_proration(line),
        "period_start": ts(period.get("start")),
        "period_end": ts(period.get("end")),
        "position": position,
    }


def row_for_payment_method(pm: Obj) -> dict[str, Any]:
    card = pm.get("card") or {}
    details = pm.get("billing_details") or {}
    return {
        "id": pm["id"],
        "customer": ref(pm.get("customer")),
        "type": pm.get("type") or "card",
        "card_brand": _text(card.get("brand")),
        "card_last4": _text(card.get("last4")),
        "card_exp_month": card.get("exp_month"),
        "card_exp_year": card.get("exp_year"),
        "card_funding": _text(card.get("funding")),
        "card_country": _text(card.get("country")),
        "billing_details_name": _text(details.get("name")),
        "created": ts(pm.get("created")) or datetime.now(UTC),
        "livemode": bool(pm.get("livemode")),
        "metadata": _metadata(pm),
    }


def row_for_tax_id(t: Obj) -> dict[str, Any]:
    verification = t.get("verification") or {}
    owner = t.get("owner") or {}
    return {
        "id": t["id"],
        "customer": ref(t.get("customer")) or ref(owner.get("customer")),
        "type": t.get("type") or "unknown",
        "value": t.get("value") or "",
        "country": _text(t.get("country")),
        "verification_status": verification.get("status") or "unverified",
        "created": ts(t.get("created")) or datetime.now(UTC),
        "livemode": bool(t.get("livemode")),
    }


def row_for_coupon(c: Obj) -> dict[str, Any]:
    percent = c.get("percent_off")
    return {
        "id": c["id"],
        "name": _text(c.get("name")),
        "percent_off": round(percent) if percent is not None else None,
        "amount_off": c.get("amount_off"),
        "currency": _text(c.get("currency")),
        "duration": c.get("duration") or "once",
        "duration_in_months": c.get("duration_in_months"),
        "valid": bool(c.get("valid", True)),
        "created": ts(c.get("created")) or datetime.now(UTC),
        "livemode": bool(c.get("livemode")),
        "metadata": _metadata(c),
    }


def promotion_coupon(p: Obj) -> str | None:
    promotion = p.get("promotion") or {}
    return ref(promotion.get("coupon")) or ref(p.get("coupon"))


def row_for_promotion_code(p: Obj) -> dict[str, Any]:
    return {
        "id": p["id"],
        "code": p.get("code") or p["id"],
        "coupon": promotion_coupon(p),
        "active": bool(p.get("active", True)),
        "expires_at": ts(p.get("expires_at")),
        "max_redemptions": p.get("max_redemptions"),
        "times_redeemed": p.get("times_redeemed") or 0,
        "created": ts(p.get("created")) or datetime.now(UTC),
        "livemode": bool(p.get("livemode")),
    }


def next_phase(schedule: Obj) -> Obj | None:
    """The phase after the current one (the portal's scheduled change), if any."""
    phases = schedule.get("phases") or []
    current = schedule.get("current_phase") or {}
    if current.get("end_date") is not None:
        for phase in phases:
            if phase.get("start_date") is not None and phase["start_date"] >= current["end_date"]:
                return phase
        return None
    return phases[1] if len(phases) > 1 else None


def row_for_schedule(s: Obj) -> dict[str, Any]:
    upcoming = next_phase(s)
    items = (upcoming or {}).get("items") or []
    current = s.get("current_phase") or {}
    start = (upcoming or {}).get("start_date") or current.get("end_date") or s.get("created")
    return {
        "id": s["id"],
        "customer": ref(s.get("customer")),
        "subscription": ref(s.get("subscription")) or ref(s.get("released_subscription")) or "",
        "status": s.get("status") or "active",
        "end_behavior": s.get("end_behavior") or "release",
        "next_phase_start": ts(start) or datetime.now(UTC),
        # "" when there is no next phase: the portal shows no pending change for it.
        "next_phase_price": ref(items[0].get("price")) or "" if items else "",
        "next_phase_quantity": (items[0].get("quantity") or 1) if items else 1,
        "created": ts(s.get("created")) or datetime.now(UTC),
        "released_at": ts(s.get("released_at")),
        "livemode": bool(s.get("livemode")),
    }


# --- upserts ----


def _fit(table: type[Table], row: dict[str, Any]) -> dict[str, Any]:
    """Cut strings to their Varchar length (PostgreSQL refuses longer values)."""
    out = dict(row)
    for name, value in row.items():
        if isinstance(value, str):
            column = table._meta.get_column_by_name(name)
            if isinstance(column, Varchar) and column.length and len(value) > column.length:
                out[name] = value[: column.length]
    return out


async def upsert(table: type[Table], rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows, or update the columns they carry when the id exists (both engines). Rows
    with the same id: the last one wins. Returns the number of rows written."""
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_id[row["id"]] = row
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in by_id.values():
        groups[tuple(sorted(row))].append(row)
    for keys, group in groups.items():
        updates = [table._meta.get_column_by_name(k) for k in keys if k != "id"]
        for start in range(0, len(group), CHUNK):
            instances = [table(**_fit(table, row)) for row in group[start : start + CHUNK]]
            query = table.insert(*instances)
            if updates:
                query = query.on_conflict(target=table.id, action="DO UPDATE", values=updates)
            else:
                query = query.on_conflict(target=table.id, action="DO NOTHING")
            await query
    return len(by_id)


# --- a batch of Stripe objects ----

REFERENCE_TABLES: dict[str, type[Table]] = {
    "customer": Customer,
    "product": Product,
    "price": Price,
    "coupon": Coupon,
}


class Batch:
    """Stripe objects to write to the mirror in one transaction (see the module docstring)."""

    def __init__(self) -> None:
        self.rows: dict[type[Table], dict[str, dict[str, Any]]] = defaultdict(dict)
        self.refs: dict[str, set[str]] = defaultdict(set)
        self.item_sets: dict[str, set[str]] = {}  # subscription → its items (complete)
        self.line_sets: dict[str, set[str]] = {}  # invoice → its lines (complete)
        self.partial_lines: dict[str, Obj] = {}  # invoice id → invoice whose lines has_more
        self.pm_sets: dict[str, set[str]] = {}  # customer → attached payment methods (complete)
        self.tax_id_sets: dict[str, set[str]] = {}  # customer → tax ids (complete)
        self.detached: set[str] = set()
        self.deleted_tax_ids: set[str] = set()
        self.deleted_invoices: set[str] = set()
        self.deleted_products: set[str] = set()
        self.deleted_coupons: set[str] = set()

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def count(self, table: type[Table]) -> int:
        return len(self.rows.get(table, {}))

    def _put(self, table: type[Table], row: dict[str, Any]) -> None:
        self.rows[table][row["id"]] = row

    def _need(self, kind: str, object_id: str | None) -> None:
        if object_id:
            self.refs[kind].add(object_id)

    def _maybe(self, value: Any) -> None:
        """Add an expanded object; ignore an id."""
        if isinstance(value, Mapping) and value.get("object"):
            self.add(value)

    # -- adding objects ----
    def add(self, obj: Obj | None) -> None:
        if not obj:
            return
        kind = obj.get("object")
        if obj.get("deleted") is True:
            self._deleted(kind, obj["id"])
            return
        handler = getattr(self, f"_add_{str(kind).replace('.', '_')}", None)
        if handler is not None:
            handler(obj)

    def add_all(self, objects: Iterable[Obj]) -> None:
        for obj in objects:
            self.add(obj)

    def _deleted(self, kind: Any, object_id: str) -> None:
        if kind == "customer":
            self.customer_deleted(object_id)
        elif kind == "tax_id":
            self.tax_id_deleted(object_id)
        elif kind == "invoice":
            self.invoice_deleted(object_id)
        elif kind == "product":
            self.deleted_products.add(object_id)
        elif kind == "coupon":
            self.deleted_coupons.add(object_id)

    def _add_customer(self, c: Obj) -> None:
        self._put(Customer, row_for_customer(c))
        self._maybe((c.get("invoice_settings") or {}).get("default_payment_method"))

    def _add_product(self, p: Obj) -> None:
        self._put(Product, row_for_product(p))

    def _add_price(self, p: Obj) -> None:
        self._maybe(p.get("product"))
        row = row_for_price(p)
        self._need("product", row["product"])
        self._put(Price, row)

    def _add_coupon(self, c: Obj) -> None:
        self._put(Coupon, row_for_coupon(c))

    def _add_promotion_code(self, p: Obj) -> None:
        self._maybe((p.get("promotion") or {}).get("coupon"))
        self._maybe(p.get("coupon"))
        row = row_for_promotion_code(p)
        self._need("coupon", row["coupon"])
        self._put(PromotionCode, row)

    def _add_discount(self, d: Obj) -> None:
        coupon = (d.get("source") or {}).get("coupon") or d.get("coupon")
        self._maybe(coupon)
        self._need("coupon", ref(coupon))

    def _add_subscription(self, s: Obj) -> None:
        self._maybe(s.get("customer"))
        row = row_for_subscription(s)
        self._need("customer", row["customer"])
        self._need("coupon", row.get("discount_coupon"))
        self._put(Subscription, row)
        items = (s.get("items") or {}).get("data") or []
        if not (s.get("items") or {}).get("has_more"):
            self.item_sets[s["id"]] = {item["id"] for item in items}
        for item in items:
            price = item.get("price")
            if isinstance(price, Mapping):
                self.add(price)
            item_row = row_for_subscription_item(item, s["id"], s)
            self._need("price", item_row["price"])
            self._put(SubscriptionItem, item_row)
        for discount in s.get("discounts") or []:
            self._maybe(discount)
        self._maybe(s.get("latest_invoice"))
        self._maybe(s.get("schedule"))
        self._maybe(s.get("default_payment_method"))

    def _add_invoice(self, i: Obj) -> None:
        if str(i.get("id", "")).startswith("upcoming_") or not i.get("id"):
            return  # previews are never stored
        self._maybe(i.get("customer"))
        row = row_for_invoice(i)
        self._need("customer", row["customer"])
        self._put(Invoice, row)
        self.deleted_invoices.discard(i["id"])
        lines = i.get("lines")
        if not isinstance(lines, Mapping):
            return
        data = lines.get("data") or []
        if lines.get("has_more"):
            self.partial_lines[i["id"]] = i
        else:
            self.partial_lines.pop(i["id"], None)
            self.line_sets[i["id"]] = {line["id"] for line in data}
        for position, line in enumerate(data):
            self._put(InvoiceLine, row_for_invoice_line(line, i["id"], position, row["currency"]))

    def add_invoice_lines(self, invoice: Obj, lines: list[Obj]) -> None:
        """The complete lines of an invoice whose embedded list was cut short."""
        self.partial_lines.pop(invoice["id"], None)
        self.line_sets[invoice["id"]] = {line["id"] for line in lines}
        currency = invoice.get("currency") or "usd"
        for position, line in enumerate(lines):
            self._put(InvoiceLine, row_for_invoice_line(line, invoice["id"], position, currency))

    def _add_payment_method(self, pm: Obj) -> None:
        self._maybe(pm.get("customer"))
        row = row_for_payment_method(pm)
        self._need("customer", row["customer"])
        self._put(PaymentMethod, row)
        if row["customer"] is None:
            self.detached.add(pm["id"])
        else:
            self.detached.discard(pm["id"])

    def _add_tax_id(self, t: Obj) -> None:
        row = row_for_tax_id(t)
        if row["customer"] is None:
            return  # an account's own tax id, not a customer's
        self._need("customer", row["customer"])
        self._put(TaxId, row)
        self.deleted_tax_ids.discard(t["id"])

    def _add_subscription_schedule(self, s: Obj) -> None:
        self._maybe(s.get("customer"))
        row = row_for_schedule(s)
        self._need("customer", row["customer"])
        self._put(SubscriptionSchedule, row)

    def _add_setup_intent(self, intent: Obj) -> None:
        self._maybe(intent.get("payment_method"))

    def _add_checkout_session(self, session: Obj) -> None:
        self._maybe(session.get("setup_intent"))

    # -- lists and deletions ----
    def replace_payment_methods(self, customer_id: str, methods: Iterable[Obj]) -> None:
        """``methods`` are all the payment methods attached to the customer."""
        methods = list(methods)
        self.add_all(methods)
        self.pm_sets[customer_id] = {pm["id"] for pm in methods}

    def replace_tax_ids(self, customer_id: str, tax_ids: Iterable[Obj]) -> None:
        tax_ids = list(tax_ids)
        self.add_all(tax_ids)
        self.tax_id_sets[customer_id] = {t["id"] for t in tax_ids}

    def customer_deleted(self, customer_id: str) -> None:
        """The row stays (invoices and subscriptions point at it) with ``deleted = true``."""
        self._put(Customer, {"id": customer_id, "deleted": True})

    def payment_method_detached(self, payment_method_id: str) -> None:
        self.detached.add(payment_method_id)
        row = self.rows[PaymentMethod].get(payment_method_id)
        if row is not None:
            row["customer"] = None

    def tax_id_deleted(self, tax_id: str) -> None:
        self.rows[TaxId].pop(tax_id, None)
        self.deleted_tax_ids.add(tax_id)

    def invoice_deleted(self, invoice_id: str) -> None:
        self.rows[Invoice].pop(invoice_id, None)
        self.line_sets.pop(invoice_id, None)
        self.deleted_invoices.add(invoice_id)

    def product_deleted(self, product_id: str) -> None:
        self.deleted_products.add(product_id)

    def coupon_deleted(self, coupon_id: str) -> None:
        self.deleted_coupons.add(coupon_id)

    def stub(self, kind: str, object_id: str) -> None:
        """A row for a referenced object Stripe no longer has (so foreign keys hold)."""
        if kind == "customer":
            self.customer_deleted(object_id)
        elif kind == "product":
            self._put(Product, {"id": object_id, "name": object_id, "active": False})
        elif kind == "coupon":
            self._put(Coupon, {"id": object_id, "valid": False})

    # -- what is missing, and writing ----
    async def missing(self) -> dict[str, set[str]]:
        """Referenced ids that neither this batch nor the mirror has, by kind."""
        out: dict[str, set[str]] = {}
        for kind, table in REFERENCE_TABLES.items():
            wanted = {i for i in self.refs.get(kind, set()) if i not in self.rows.get(table, {})}
            if not wanted:
                continue
            found = await table.select(table.id).where(table.id.is_in(sorted(wanted)))
            rest = wanted - {row["id"] for row in found}
            if rest:
                out[kind] = rest
        return out

    async def apply(self) -> None:
        """Write everything; call inside ``db.write()`` (see ``commit``)."""
        rows = self.rows
        await upsert(Product, rows[Product].values())
        await upsert(Price, rows[Price].values())
        await upsert(Coupon, rows[Coupon].values())
        await upsert(PromotionCode, rows[PromotionCode].values())
        await upsert(Customer, rows[Customer].values())
        if self.deleted_products:
            await Product.update({Product.active: False}).where(
                Product.id.is_in(sorted(self.deleted_products))
            )
        if self.deleted_coupons:
            await Coupon.update({Coupon.valid: False}).where(
                Coupon.id.is_in(sorted(self.deleted_coupons))
            )
        await upsert(PaymentMethod, rows[PaymentMethod].values())
        for customer_id, keep in self.pm_sets.items():
            stale = PaymentMethod.customer == customer_id
            if keep:
                stale = stale & PaymentMethod.id.not_in(sorted(keep))
            await PaymentMethod.update({PaymentMethod.customer: None}).where(stale)
        if self.detached:
            await PaymentMethod.update({PaymentMethod.customer: None}).where(
                PaymentMethod.id.is_in(sorted(self.detached))
            )
        await upsert(Subscription, rows[Subscription].values())
        for subscription_id, keep in self.item_sets.items():
            stale = SubscriptionItem.subscription == subscription_id
            if keep:
                stale = stale & SubscriptionItem.id.not_in(sorted(keep))
            await SubscriptionItem.delete().where(stale)
        await upsert(SubscriptionItem, rows[SubscriptionItem].values())
        if self.deleted_invoices:
            gone = sorted(self.deleted_invoices)
            await InvoiceLine.delete().where(InvoiceLine.invoice.is_in(gone))
            await Invoice.delete().where(Invoice.id.is_in(gone))
        await upsert(Invoice, rows[Invoice].values())
        for invoice_id, keep in self.line_sets.items():
            stale = InvoiceLine.invoice == invoice_id
            if keep:
                stale = stale & InvoiceLine.id.not_in(sorted(keep))
            await InvoiceLine.delete().where(stale)
        await upsert(InvoiceLine, rows[InvoiceLine].values())
        for customer_id, keep in self.tax_id_sets.items():
            stale = TaxId.customer == customer_id
            if keep:
                stale = stale & TaxId.id.not_in(sorted(keep))
            await TaxId.delete().where(stale)
        if self.deleted_tax_ids:
            await TaxId.delete().where(TaxId.id.is_in(sorted(self.deleted_tax_ids)))
        await upsert(TaxId, rows[TaxId].values())
        await upsert(SubscriptionSchedule, rows[SubscriptionSchedule].values())

    async def commit(self) -> None:
        """Apply in one write transaction."""
        async with db.write():
            await self.apply()
