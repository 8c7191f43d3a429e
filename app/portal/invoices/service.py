"""Invoices: the customer's history (drafts never shown), one invoice in full, its PDF, paying an
open invoice with the default payment method."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.billing import queries
from app.billing.gateway import BillingGateway, GatewayError, InvoiceDocument, PaymentResult
from app.billing.queries import CardView, InvoiceRow
from app.billing.tables import Customer, Invoice, InvoiceLine, Subscription, TaxId
from app.configuration.features import Features
from app.i18n import gettext as _
from app.portal import activity
from app.portal.activity import Who
from app.portal.details.forms import country_name

PER_PAGE = 20
PAYABLE_STATUSES = ("open",)
PAID = "invoice.paid"
REDIRECTED = "invoice.payment_redirected"


class NotFound(Exception):
    """No such invoice for this customer (drafts count as none)."""


class NotPayable(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_payable")


def enabled(features: Features) -> bool:
    return features.invoice_history.enabled


# -- history ---------------------------------------------------------------------------------------
def page_number(raw: str | None) -> int:
    """``?page=``: a whole number from 1; anything else means the first page."""
    value = (raw or "").strip()
    if not value.isdigit() or len(value) > 9:
        return 1
    return max(int(value), 1)


def page_count(total: int, per_page: int = PER_PAGE) -> int:
    return max(1, -(-total // per_page))


class History(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[InvoiceRow]
    page: int
    pages: int
    total: int

    @property
    def has_newer(self) -> bool:
        return self.page > 1

    @property
    def has_older(self) -> bool:
        return self.page < self.pages


def _visible(customer_id: str):
    return (Invoice.customer == customer_id) & (Invoice.status != "draft")


async def history(customer_id: str, page: int, per_page: int = PER_PAGE) -> History:
    """One page of invoices, newest first; a page past the end shows the last page."""
    total = await Invoice.count().where(_visible(customer_id))
    pages = page_count(total, per_page)
    page = min(max(page, 1), pages)
    found = await queries.invoices_page(customer_id, page, per_page)
    return History(rows=found.rows, page=page, pages=pages, total=total)


# -- one invoice -----------------------------------------------------------------------------------
class LineView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    description: str | None
    amount: int
    currency: str
    quantity: int | None
    proration: bool
    period_start: datetime | None
    period_end: datetime | None


class TaxIdView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    value: str


class InvoiceDetail(InvoiceRow, frozen=True, kw_only=True):
    subtotal: int
    tax: int
    collection_method: str
    subscription: str | None
    lines: list[LineView]
    customer: Customer
    tax_ids: list[TaxIdView]
    payment_method: CardView | None

    @property
    def discount(self) -> int:
        """What discounts took off: total = subtotal - discount + tax."""
        return max(self.subtotal + self.tax - self.total, 0)

    @property
    def payable(self) -> bool:
        return self.status in PAYABLE_STATUSES and self.amount_remaining > 0

    @property
    def reference(self) -> str:
        return self.number or self.id

    @property
    def billing_address(self) -> list[str]:
        c = self.customer
        place = " ".join(
            p
            for p in (", ".join(p for p in (c.address_city, c.address_state) if p),
                      c.address_postal_code)
            if p
        )  # fmt: skip
        country = country_name(c.address_country) if c.address_country else None
        parts = (c.address_line1, c.address_line2, place, country)
        return [p for p in parts if p]


_DETAIL_COLUMNS = (
    *queries.INVOICE_COLUMNS,
    Invoice.subtotal,
    Invoice.tax,
    Invoice.collection_method,
    Invoice.subscription,
)


async def _row(customer_id: str, invoice_id: str) -> dict | None:
    return (
        await Invoice.select(*_DETAIL_COLUMNS)
        .where((Invoice.id == invoice_id) & _visible(customer_id))
        .first()
    )


async def payment_card(customer: Customer, subscription_id: str | None) -> CardView | None:
    """The card an invoice is charged to: its subscription's own default payment method, else the
    customer's default (as Stripe does)."""
    pm_id = customer.invoice_settings_default_payment_method
    if subscription_id:
        sub = (
            await Subscription.select(Subscription.default_payment_method)
            .where((Subscription.id == subscription_id) & (Subscription.customer == customer.id))
            .first()
        )
        if sub and sub["default_payment_method"]:
            pm_id = sub["default_payment_method"]
    return await queries.card(customer.id, pm_id)


async def invoice(customer: Customer, invoice_id: str) -> InvoiceDetail:
    """One of the customer's invoices with its lines, billing details and tax ids (four queries).
    ``NotFound`` for another customer's invoice, a draft or an unknown id."""
    row = await _row(customer.id, invoice_id)
    if row is None:
        raise NotFound(invoice_id)
    lines = (
        await InvoiceLine.select(
            InvoiceLine.id,
            InvoiceLine.description,
            InvoiceLine.amount,
            InvoiceLine.currency,
            InvoiceLine.quantity,
            InvoiceLine.proration,
            InvoiceLine.period_start,
            InvoiceLine.period_end,
        )
        .where(InvoiceLine.invoice == invoice_id)
        .order_by(InvoiceLine.position)
        .order_by(InvoiceLine.id)
    )
    tax_ids = (
        await TaxId.select(TaxId.id, TaxId.type, TaxId.value)
        .where(TaxId.customer == customer.id)
        .order_by(TaxId.created)
    )
    return InvoiceDetail(
        **row,
        lines=[LineView(**line) for line in lines],
        customer=customer,
        tax_ids=[TaxIdView(**t) for t in tax_ids],
        payment_method=await payment_card(customer, row["subscription"]),
    )


async def reference(customer: Customer, invoice_id: str) -> str:
    """The invoice's number (or id); ``NotFound`` when the customer has no such invoice."""
    row = await _row(customer.id, invoice_id)
    if row is None:
        raise NotFound(invoice_id)
    return row["number"] or row["id"]


def pdf_filename(number: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in number)[:100]
    return f"{safe or 'invoice'}.pdf"


async def document(
    gateway: BillingGateway, customer: Customer, invoice_id: str, *, business_name: str
) -> tuple[str, InvoiceDocument]:
    """The invoice's PDF (bytes or the provider's URL) and the file name to download it as."""
    number = await reference(customer, invoice_id)
    doc = await gateway.invoice_document(invoice_id, business_name=business_name)
    return pdf_filename(number), doc


# -- paying ----------------------------------------------------------------------------------------
async def pay(
    gateway: BillingGateway, who: Who, customer: Customer, invoice_id: str, *, key: str
) -> tuple[str, PaymentResult]:
    """Pay an open invoice with the default payment method. ``NotFound`` for an invoice the
    customer does not have; ``NotPayable``/``GatewayError`` with a message otherwise. The same
    form sent again gets the first answer (the invoice is paid by then)."""
    row = await _row(customer.id, invoice_id)
    if row is None:
        raise NotFound(invoice_id)
    number = row["number"] or row["id"]
    state = await activity.replay(who, (PAID, REDIRECTED), key)
    if state is activity.Replay.NEW:
        if row["status"] not in PAYABLE_STATUSES or row["amount_remaining"] <= 0:
            raise NotPayable(_("Invoice %(number)s has nothing left to pay.") % {"number": number})
        if await payment_card(customer, row["subscription"]) is None:
            raise NotPayable(_("Add a payment method before paying this invoice."))
    result = await gateway.pay_invoice(invoice_id, idempotency_key=key)
    after = await _row(customer.id, invoice_id) or row
    await activity.record_once(
        who,
        PAID if result.status == "paid" else REDIRECTED,
        key=key,
        object_type="invoice",
        object_id=invoice_id,
        before={"status": row["status"], "amount_remaining": row["amount_remaining"]},
        after={"status": after["status"], "amount_remaining": after["amount_remaining"]},
        replay=state,
    )
    return number, result
