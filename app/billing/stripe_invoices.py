"""Invoices on Stripe: paying an open invoice (on Stripe's hosted invoice page) and its PDF."""

from __future__ import annotations

from app.billing.gateway import GatewayError, InvoiceDocument, PaymentResult
from app.billing.stripe_actions import StripeActions
from app.billing.stripe_batch import Batch
from app.billing.stripe_client import plain
from app.billing.stripe_fetch import complete
from app.billing.tables import Invoice


async def pay_invoice(
    actions: StripeActions, invoice_id: str, *, idempotency_key: str
) -> PaymentResult:
    """``invoices.retrieve``: an open invoice is paid on Stripe's hosted invoice page
    (``redirect``); nothing changes on Stripe here, so no request needs the key."""
    async with actions.guard("The invoice couldn't be paid."):
        invoice = plain(await actions.client.v1.invoices.retrieve_async(invoice_id))
        batch = Batch()
        batch.add(invoice)
        await complete(actions.client, batch)
    await batch.commit()
    status = invoice.get("status")
    if status == "paid":
        return PaymentResult(status="paid")
    url = invoice.get("hosted_invoice_url")
    if status in ("open", "uncollectible") and url:
        return PaymentResult(status="redirect", redirect_url=url)
    raise GatewayError("This invoice can't be paid online.", code="invoice_not_payable")


async def invoice_document(
    actions: StripeActions, invoice_id: str, *, business_name: str
) -> InvoiceDocument:
    """Stripe's ``invoice_pdf`` (from the mirror, else ``invoices.retrieve``)."""
    row = (
        await Invoice.select(Invoice.number, Invoice.invoice_pdf)
        .where(Invoice.id == invoice_id)
        .first()
    )
    number, url = (row["number"], row["invoice_pdf"]) if row else (None, None)
    if not url:
        async with actions.guard("The invoice PDF couldn't be fetched."):
            invoice = plain(await actions.client.v1.invoices.retrieve_async(invoice_id))
        number, url = invoice.get("number"), invoice.get("invoice_pdf")
    if not url:
        raise GatewayError("This invoice has no PDF yet.", code="no_document")
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in (number or invoice_id))
    return InvoiceDocument(filename=f"{safe}.pdf", url=url)
