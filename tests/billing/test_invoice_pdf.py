"""Invoice PDFs drawn by the sandbox, read back with pypdf."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from app.billing import invoice_pdf
from app.billing.tables import Coupon, Invoice, InvoiceLine, TaxId
from tests.billing.sandbox_world import NOW

pytestmark = pytest.mark.usefixtures("db")


def text_of(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


async def test_invoice_document(world):
    await TaxId.insert(
        TaxId(id="txi_1", customer=world.customer, type="eu_vat", value="DE123456789")
    )
    document = await world.gateway.invoice_document(world.invoice, business_name="Acme Cloud")
    assert document.filename == "ACME-0001-0004.pdf"
    assert document.url is None
    assert document.content.startswith(b"%PDF-")
    text = text_of(document.content)
    for expected in (
        "Acme Cloud",
        "Invoice number: ACME-0001-0004",
        "Jenny Rosen",
        "jenny.rosen@example.com",
        "510 Townsend St",
        "San Francisco, CA 94103",
        "EU VAT DE123456789",
        "$145.00",
        "Status: Paid",
        "Amount due",
        "1 Mar 2026",
    ):
        assert expected in text, expected


async def test_discounted_open_invoice(world):
    await Coupon.insert(Coupon(id="STAY20", name="20% off for 3 months", percent_off=20))
    invoice = Invoice(
        id="in_discounted",
        customer=world.customer,
        number="ACME-0001-0005",
        status="open",
        currency="eur",
        subtotal=10000,
        total=8000,
        amount_due=8000,
        amount_remaining=8000,
        created=NOW,
        due_date=datetime(2026, 4, 10, tzinfo=UTC),
        metadata={"sandbox_discount_coupon": "STAY20"},
    )
    await Invoice.insert(invoice)
    await InvoiceLine.insert(
        InvoiceLine(
            id="il_a",
            invoice=invoice.id,
            description="Consulting \N{EN DASH} half day",
            amount=10000,
            currency="eur",
            quantity=1,
        ),
    )
    document = await world.gateway.invoice_document(invoice.id, business_name="Acme Cloud")
    text = text_of(document.content)
    assert "ACME-0001-0005" in text
    assert "Acme Cloud" in text
    assert "€80.00" in text
    assert "Discount (20% off for 3 months)" in text
    assert "Status: Open" in text
    assert "10 Apr 2026" in text


def test_core_font_fallback_transliterates():
    data = invoice_pdf.InvoicePdf(
        business_name="Zoë's Café",
        number="ZC-0001",
        status="paid",
        currency="eur",
        created=NOW,
        customer_name="Łukasz Żółw",
        customer_email="l@example.com",
        subtotal=1234,
        total=1234,
        amount_due=1234,
        amount_paid=1234,
        amount_remaining=0,
        paid_at=NOW,
        lines=[invoice_pdf.PdfLine(description="Tea — large", quantity=2, amount=1234)],
    )
    text = text_of(invoice_pdf.render(data, font=None))
    assert "Zoë's Café" in text
    assert "ZC-0001" in text
    assert "Lukasz" in text
    assert "EUR 12.34" in text
