"""A batch of Stripe objects, written to the mirror in one transaction.

``Batch`` collects everything one action, webhook, refresh or backfill page learned from Stripe:

- ``batch.add(obj)`` takes any Stripe object and the objects expanded inside it (a subscription's
  items, prices, products, latest invoice, discounts, schedule; an invoice's lines; …), mapped
  to rows by ``app.billing.stripe_mapping``;
- lists that are complete replace what the mirror holds (``replace_payment_methods``,
  ``replace_tax_ids``; a subscription's items and a complete invoice's lines always do);
- deletions: ``customer_deleted`` (the row keeps ``deleted = true``), ``payment_method_detached``
  (``customer`` becomes null), ``tax_id_deleted`` / ``invoice_deleted`` (rows removed),
  ``product_deleted`` (inactive), ``coupon_deleted`` (no longer valid);
- ``await batch.missing()`` names the referenced customers, products, prices and coupons that
  neither the batch nor the mirror has (the caller fetches them: the mirror's foreign keys need
  them first);
- ``await batch.apply()`` writes it all, parents before children, inside the caller's
  ``db.write()`` transaction; ``await batch.commit()`` opens one. Every write is an ``upsert``
  (``INSERT … ON CONFLICT (id) DO UPDATE`` on SQLite and PostgreSQL), so applying the same
  objects twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from piccolo.columns import Varchar
from piccolo.table import Table

from app import db
from app.billing.stripe_mapping import (
    Obj,
    ref,
    row_for_coupon,
    row_for_customer,
    row_for_invoice,
    row_for_invoice_line,
    row_for_payment_method,
    row_for_price,
    row_for_product,
    row_for_promotion_code,
    row_for_schedule,
    row_for_subscription,
    row_for_subscription_item,
    row_for_tax_id,
)
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

CHUNK = 200  # rows per INSERT statement

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
