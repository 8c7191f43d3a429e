"""The sandbox's shared pieces: Stripe-like ids, row loading, invoices and charges.

Everything here runs inside the gateway call's write transaction (``idempotency.run``), except the
plain loaders, which previews also use outside one.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app import db
from app.billing import proration
from app.billing.gateway import CardDeclined, GatewayError, PreviewLine
from app.billing.tables import (
    Coupon,
    Customer,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    Subscription,
)

_ALPHANUMERIC = string.ascii_letters + string.digits
_NUMBER = re.compile(r"^(?P<prefix>.*?)-?(?P<sequence>\d+)$")
DEFAULT_NUMBER_PREFIX = "SBX"
ENDED = ("canceled", "incomplete_expired")
# PaymentMethod.metadata key marking Stripe's 4000 0000 0000 0341: attaches, charges decline.
CHARGES_KEY = "sandbox_charges"


def new_id(prefix: str, length: int = 24) -> str:
    """``in_…``, ``pm_…``: Stripe's prefixes with a random suffix from ``secrets``."""
    return f"{prefix}_{''.join(secrets.choice(_ALPHANUMERIC) for _ in range(length))}"


@dataclass(frozen=True)
class Charge:
    """A line to invoice now or leave pending, with the price and quantity it is for."""

    line: PreviewLine
    price: str | None = None
    quantity: int | None = None


def not_found(what: str) -> GatewayError:
    return GatewayError(f"We couldn't find that {what}.", code="resource_missing")


# --- loading -------------------------------------------------------------------------------------


async def subscription(subscription_id: str, *, lock: bool = False) -> Subscription:
    """The subscription row; ``lock`` takes a row lock on PostgreSQL (SQLite's write transaction
    already holds the whole database)."""
    query = Subscription.objects().where(Subscription.id == subscription_id)
    if lock and db.is_postgres():
        query = query.lock_rows("UPDATE")
    found = await query.first()
    if found is None:
        raise not_found("subscription")
    return found


async def customer(customer_id: str) -> Customer:
    found = await Customer.objects().where(Customer.id == customer_id).first()
    if found is None or found.deleted:
        raise not_found("customer")
    return found


async def invoice(invoice_id: str, *, lock: bool = False) -> Invoice:
    query = Invoice.objects().where(Invoice.id == invoice_id)
    if lock and db.is_postgres():
        query = query.lock_rows("UPDATE")
    found = await query.first()
    if found is None:
        raise not_found("invoice")
    return found


async def customer_of_subscription(subscription_id: str) -> str:
    row = (
        await Subscription.select(Subscription.customer)
        .where(Subscription.id == subscription_id)
        .first()
    )
    if row is None:
        raise not_found("subscription")
    return row["customer"]


async def customer_of_invoice(invoice_id: str) -> str:
    row = await Invoice.select(Invoice.customer).where(Invoice.id == invoice_id).first()
    if row is None:
        raise not_found("invoice")
    return row["customer"]


async def price_and_product(price_id: str) -> tuple[Price, Product]:
    price = await Price.objects().where(Price.id == price_id).first()
    if price is None:
        raise GatewayError("That plan is not available.", code="resource_missing", field="price")
    product = await Product.objects().where(Product.id == price.product).first()
    if product is None:
        raise GatewayError("That plan is not available.", code="resource_missing", field="price")
    return price, product


async def coupon(coupon_id: str | None) -> Coupon | None:
    if not coupon_id:
        return None
    return await Coupon.objects().where(Coupon.id == coupon_id).first()


async def pending_items(customer_id: str, subscription_id: str | None) -> list[InvoiceItem]:
    """Not yet invoiced items that the subscription's next invoice will carry."""
    where = (InvoiceItem.customer == customer_id) & InvoiceItem.invoice.is_null()
    if subscription_id is not None:
        where &= InvoiceItem.subscription == subscription_id
    return await InvoiceItem.objects().where(where).order_by(InvoiceItem.created, InvoiceItem.id)


async def add_pending_items(
    customer_id: str,
    subscription_id: str | None,
    currency: str,
    charges: Sequence[Charge],
    now: datetime,
) -> None:
    """Proration lines that wait for the next invoice (``InvoiceItem`` rows, ``ii_…``)."""
    rows = [
        InvoiceItem(
            id=new_id("ii"),
            customer=customer_id,
            subscription=subscription_id,
            invoice=None,
            amount=charge.line.amount,
            currency=currency,
            description=charge.line.description,
            price=charge.price,
            quantity=charge.quantity,
            proration=charge.line.proration,
            period_start=charge.line.period_start,
            period_end=charge.line.period_end,
            created=now,
        )
        for charge in charges
    ]
    if rows:
        await InvoiceItem.insert(*rows)


# --- invoices ------------------------------------------------------------------------------------


async def next_invoice_number(customer_id: str) -> str:
    """Continue the customer's sequence (``ACME-0007-0012`` → ``ACME-0007-0013``); a customer's
    first invoice takes the next unused customer prefix (``ACME-0042-0001``)."""
    rows = await Invoice.select(Invoice.number).where(
        (Invoice.customer == customer_id) & Invoice.number.is_not_null()
    )
    best: tuple[int, str, int] | None = None  # (sequence, prefix, width)
    for row in rows:
        match = _NUMBER.match(row["number"])
        if match and (best is None or int(match["sequence"]) > best[0]):
            best = (int(match["sequence"]), match["prefix"], len(match["sequence"]))
    if best is not None:
        sequence, prefix, width = best
        return f"{prefix}-{sequence + 1:0{width}d}" if prefix else f"{sequence + 1:0{width}d}"
    latest = (
        await Invoice.select(Invoice.number)
        .where(Invoice.number.is_not_null())
        .order_by(Invoice.number, ascending=False)
        .first()
    )
    if latest is not None:
        match = _NUMBER.match(latest["number"])
        inner = _NUMBER.match(match["prefix"]) if match else None
        if inner is not None:
            width = len(inner["sequence"])
            customer_part = f"{int(inner['sequence']) + 1:0{width}d}"
            base = f"{inner['prefix']}-{customer_part}" if inner["prefix"] else customer_part
            return f"{base}-0001"
    return f"{DEFAULT_NUMBER_PREFIX}-{secrets.token_hex(4).upper()}-0001"


async def payment_method_for(
    customer_row: Customer, sub: Subscription | None
) -> PaymentMethod | None:
    """Stripe's order: the subscription's default payment method, else the customer's
    ``invoice_settings.default_payment_method``; only while it is attached to the customer."""
    for pm_id in (
        sub.default_payment_method if sub else None,
        customer_row.invoice_settings_default_payment_method,
    ):
        if pm_id:
            pm = (
                await PaymentMethod.objects()
                .where((PaymentMethod.id == pm_id) & (PaymentMethod.customer == customer_row.id))
                .first()
            )
            if pm is not None:
                return pm
    return None


def charge(pm: PaymentMethod, amount: int, now: datetime) -> None:
    """A sandbox charge: succeeds unless the card is expired or is Stripe's 4000 0000 0000 0341
    ("attaches, then every charge declines")."""
    if amount <= 0:
        return
    if (pm.card_exp_year or 0, pm.card_exp_month or 0) < (now.year, now.month):
        raise CardDeclined("Your card has expired.", code="expired_card")
    if metadata(pm).get(CHARGES_KEY) == "decline":
        raise CardDeclined("Your card was declined.")


def metadata(row: PaymentMethod) -> dict:
    raw = row.metadata
    if isinstance(raw, str | bytes):
        return json.loads(raw or "{}")
    return dict(raw or {})


def mark_paid(row: Invoice, now: datetime) -> None:
    row.status = "paid"
    row.amount_paid = row.amount_paid + row.amount_remaining
    row.amount_remaining = 0
    row.status_transitions_paid_at = now


async def create_invoice(
    customer_row: Customer,
    sub: Subscription | None,
    charges: Sequence[Charge],
    now: datetime,
    *,
    billing_reason: str,
    coupon_row: Coupon | None = None,
    items: Sequence[InvoiceItem] = (),
) -> tuple[Invoice, bool]:
    """Finalize an invoice now from ``lines`` plus already pending ``items``, discount it with the
    subscription's coupon, and try to collect it from the default payment method. Returns the
    invoice and whether it is paid (an invoice with nothing to pay is paid at once; one whose
    charge declines, or with no payment method, stays open)."""
    currency = sub.currency if sub else (customer_row.currency or "usd")
    lines = [charge.line for charge in charges]
    subtotal = sum(line.amount for line in lines) + sum(item.amount for item in items)
    off = 0
    if coupon_row is not None:
        off = proration.discount_amount(
            subtotal, percent_off=coupon_row.percent_off, amount_off=coupon_row.amount_off
        )
    total = subtotal - off
    due = max(total, 0)
    periodic = [line for line in lines if not line.proration] or list(lines)
    row = Invoice(
        id=new_id("in"),
        customer=customer_row.id,
        subscription=sub.id if sub else None,
        number=await next_invoice_number(customer_row.id),
        status="open",
        currency=currency,
        subtotal=subtotal,
        tax=0,
        total=total,
        amount_due=due,
        amount_paid=0,
        amount_remaining=due,
        collection_method=sub.collection_method if sub else "charge_automatically",
        billing_reason=billing_reason,
        created=now,
        period_start=periodic[0].period_start if periodic else now,
        period_end=periodic[0].period_end if periodic else now,
        metadata={"sandbox_discount_coupon": coupon_row.id} if coupon_row and off else {},
    )
    invoice_lines = [
        InvoiceLine(
            id=new_id("il"),
            invoice=row.id,
            description=c.line.description,
            amount=c.line.amount,
            currency=currency,
            quantity=c.quantity,
            price=c.price,
            proration=c.line.proration,
            period_start=c.line.period_start,
            period_end=c.line.period_end,
            position=position,
        )
        for position, c in enumerate(charges)
    ]
    invoice_lines += [
        InvoiceLine(
            id=new_id("il"),
            invoice=row.id,
            description=item.description,
            amount=item.amount,
            currency=currency,
            quantity=item.quantity,
            price=item.price,
            proration=item.proration,
            period_start=item.period_start,
            period_end=item.period_end,
            position=len(lines) + position,
        )
        for position, item in enumerate(items)
    ]
    paid = due == 0
    if not paid:
        pm = await payment_method_for(customer_row, sub)
        if pm is not None:
            try:
                charge(pm, due, now)
                paid = True
            except CardDeclined:
                paid = False
    if paid:
        mark_paid(row, now)
    await Invoice.insert(row)
    if invoice_lines:
        await InvoiceLine.insert(*invoice_lines)
    if items:
        await InvoiceItem.update({InvoiceItem.invoice: row.id}).where(
            InvoiceItem.id.is_in([item.id for item in items])
        )
    if total < 0:
        # Stripe puts a negative total on the customer's balance; the sandbox carries it to the
        # next invoice as a pending credit.
        credit = PreviewLine(description=f"Credit from invoice {row.number}", amount=total)
        await add_pending_items(customer_row.id, row.subscription, currency, [Charge(credit)], now)
    return row, paid
