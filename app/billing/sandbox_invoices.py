"""The sandbox's invoice actions: paying an open invoice and drawing its PDF."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from app import clock
from app.billing import sandbox_store as store
from app.billing.gateway import GatewayError, InvoiceDocument
from app.billing.sandbox_changes import describe
from app.billing.tables import Customer, InvoiceLine, Subscription, TaxId

TAX_ID_LABELS = {"eu_vat": "EU VAT", "gb_vat": "GB VAT", "us_ein": "US EIN", "au_abn": "AU ABN"}


async def pay_invoice(invoice_id: str) -> dict[str, Any]:
    """Charge an open (or uncollectible) invoice to the default payment method (the
    subscription's, else the customer's). Paying the latest invoice of a ``past_due`` or
    ``unpaid`` subscription makes it ``active`` again, as in Stripe."""
    now = clock.now()
    row = await store.invoice(invoice_id, lock=True)
    if row.status == "paid":
        raise GatewayError("This invoice is already paid.", code="invoice_already_paid")
    if row.status not in ("open", "uncollectible"):
        raise GatewayError("This invoice can't be paid.", code="invoice_not_payable")
    owner = await store.customer(row.customer)
    sub = None
    if row.subscription:
        sub = await Subscription.objects().where(Subscription.id == row.subscription).first()
    pm = await store.payment_method_for(owner, sub)
    if pm is None:
        raise GatewayError(
            "Add a payment method first, then pay this invoice.", code="no_payment_method"
        )
    store.charge(pm, row.amount_remaining, now)
    store.mark_paid(row, now)
    await row.save()
    if sub is not None and sub.latest_invoice == row.id and sub.status in ("past_due", "unpaid"):
        await Subscription.update({Subscription.status: "active"}).where(Subscription.id == sub.id)
    return {"status": "paid", "invoice": row.id}


def _address(customer: Customer) -> list[str]:
    place = " ".join(
        part
        for part in (
            ", ".join(p for p in (customer.address_city, customer.address_state) if p),
            customer.address_postal_code,
        )
        if part
    )
    parts = (customer.address_line1, customer.address_line2, place, customer.address_country)
    return [part for part in parts if part]


async def invoice_document(invoice_id: str, business_name: str) -> InvoiceDocument:
    # Imported on first use: fpdf2 and the fontTools it loads take some 40 MB in every process,
    # and most never draw a PDF.
    from app.billing import invoice_pdf

    row = await store.invoice(invoice_id)
    customer = await Customer.objects().where(Customer.id == row.customer).first()
    lines = (
        await InvoiceLine.objects()
        .where(InvoiceLine.invoice == row.id)
        .order_by(InvoiceLine.position, InvoiceLine.id)
    )
    tax_ids = await TaxId.objects().where(TaxId.customer == row.customer).order_by(TaxId.created)
    raw = row.metadata
    metadata = json.loads(raw or "{}") if isinstance(raw, str | bytes) else dict(raw or {})
    coupon = await store.coupon(metadata.get("sandbox_discount_coupon"))
    number = row.number or row.id
    data = invoice_pdf.InvoicePdf(
        business_name=business_name,
        number=number,
        status=row.status,
        currency=row.currency,
        created=row.created,
        customer_name=customer.name if customer else None,
        customer_email=customer.email if customer else None,
        address=_address(customer) if customer else [],
        tax_ids=[f"{TAX_ID_LABELS.get(t.type, t.type.upper())} {t.value}" for t in tax_ids],
        lines=[
            invoice_pdf.PdfLine(
                description=line.description or "",
                quantity=line.quantity,
                amount=line.amount,
                period_start=line.period_start,
                period_end=line.period_end,
            )
            for line in lines
        ],
        subtotal=row.subtotal,
        tax=row.tax,
        total=row.total,
        discount=row.subtotal + row.tax - row.total,
        discount_label=describe(coupon) if coupon else None,
        amount_due=row.amount_due,
        amount_paid=row.amount_paid,
        amount_remaining=row.amount_remaining,
        due_date=row.due_date,
        paid_at=row.status_transitions_paid_at,
        period_start=row.period_start,
        period_end=row.period_end,
        time_zone=customer.time_zone if customer else None,
    )
    # Drawing takes a few milliseconds of CPU: keep it off the event loop.
    content = await asyncio.to_thread(invoice_pdf.render, data)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", number)
    return InvoiceDocument(filename=f"{safe}.pdf", content=content)
