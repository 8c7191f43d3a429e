"""Invoice pages, with and without htmx: history, one invoice, the PDF, paying."""

from __future__ import annotations

import io
import json
import re

import pytest
from pypdf import PdfReader

from app.billing.gateway import InvoiceDocument, PaymentResult
from app.billing.tables import Invoice
from tests.helpers import JENNY, MAX, without_html
from tests.portal.invoices.test_service import add_invoices
from tests.portal.support import (
    audit_events,
    customer_by_email,
    intents_on,
    set_features,
    signed_in,
)


async def invoice_of(customer_id: str, status: str) -> dict:
    row = (
        await Invoice.select()
        .where((Invoice.customer == customer_id) & (Invoice.status == status))
        .order_by(Invoice.created, ascending=False)
        .first()
    )
    assert row is not None
    return row


async def test_history_full_and_fragment(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        full = await jenny.get("/portal/invoices")
        assert full.status_code == 200
        assert "<!doctype html>" in full.text.lower()
        numbers = re.findall(r">(ACME-\d{4}-\d{4})</a>", full.text)
        assert numbers
        assert numbers == sorted(numbers, reverse=True)
        assert ">Open<" in full.text
        assert ">Paid<" in full.text
        assert "$250.00" in full.text  # the open one-off invoice
        assert "Dates are shown in America/Los_Angeles." in full.text
        assert "Older" not in full.text  # one page only
        fragment = await jenny.get("/portal/invoices", htmx=True)
        assert fragment.status_code == 200
        assert without_html(fragment.text)
        assert fragment.headers["vary"] == "HX-Request"


async def test_pagination(settings, demo) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        await add_invoices(max_.customer.id, 25)
        first = await max_.get("/portal/invoices")
        assert first.text.count('href="/portal/invoices/in_') == 20
        assert 'href="/portal/invoices?page=2"' in first.text
        assert ">Older<" in first.text
        assert ">Newer<" not in first.text
        second = await max_.get("/portal/invoices?page=2", htmx=True)
        assert second.text.count('href="/portal/invoices/in_') == 8
        assert 'href="/portal/invoices?page=1"' in second.text
        assert ">Newer<" in second.text
        assert ">Older<" not in second.text
        beyond = await max_.get("/portal/invoices?page=50")
        assert beyond.status_code == 200
        assert beyond.text.count('href="/portal/invoices/in_') == 8
        invalid = await max_.get("/portal/invoices?page=abc")
        assert invalid.status_code == 200
        assert invalid.text.count('href="/portal/invoices/in_') == 20


async def test_drafts_and_other_customers_invoices_are_404(settings, demo) -> None:
    max_ = await customer_by_email(MAX)
    theirs = await invoice_of(max_.id, "paid")
    async with signed_in(settings, demo, JENNY) as jenny:
        (draft,) = await add_invoices(jenny.customer.id, 1, status="draft")
        listing = await jenny.get("/portal/invoices")
        assert draft not in listing.text
        for invoice_id in (draft, theirs["id"], "in_nope"):
            for suffix in ("", "/pdf"):
                response = await jenny.get(f"/portal/invoices/{invoice_id}{suffix}")
                assert response.status_code == 404, (invoice_id, suffix)


async def test_invoice_page(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        paid = await invoice_of(jenny.customer.id, "paid")
        page = await jenny.get(f"/portal/invoices/{paid['id']}")
        assert page.status_code == 200
        html = page.text
        assert f"Invoice {paid['number']}" in html
        for text in ("Subtotal", "Tax", "Total", "Amount paid", "Amount due", "Billed to",
                     "Jenny Rosen", "Team", "Download PDF", "Paid on"):  # fmt: skip
            assert text in html, text
        assert f'href="/portal/invoices/{paid["id"]}/pdf"' in html
        assert "Pay invoice" not in html
        fragment = await jenny.get(f"/portal/invoices/{paid['id']}", htmx=True)
        assert without_html(fragment.text)
        assert "Download PDF" in fragment.text


async def test_pdf_download_is_a_real_pdf(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        paid = await invoice_of(jenny.customer.id, "paid")
        response = await jenny.get(f"/portal/invoices/{paid['id']}/pdf")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert (
            response.headers["content-disposition"]
            == f'attachment; filename="{paid["number"]}.pdf"'
        )
        text = "".join(
            page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages
        )
        assert paid["number"] in text


async def test_pdf_from_a_url_redirects(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        paid = await invoice_of(jenny.customer.id, "paid")

        async def document(invoice_id, *, business_name):
            return InvoiceDocument(filename="x.pdf", url="https://files.stripe.test/inv.pdf")

        jenny.app.state.gateway.invoice_document = document
        response = await jenny.get(f"/portal/invoices/{paid['id']}/pdf")
        assert response.status_code == 303
        assert response.headers["location"] == "https://files.stripe.test/inv.pdf"


@pytest.mark.parametrize("htmx", [False, True])
async def test_pay_open_invoice(settings, demo, htmx: bool) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        invoice = await invoice_of(jenny.customer.id, "open")
        page = await jenny.get(f"/portal/invoices/{invoice['id']}")
        assert "Pay invoice" in page.text
        assert "will be charged to Visa ending in 4242" in page.text
        intent = intents_on(page.text)[0]
        url = f"/portal/invoices/{invoice['id']}/pay"
        response = await jenny.post(url, {"intent": intent}, htmx=htmx)
        target = f"/portal/invoices/{invoice['id']}"
        if htmx:
            assert json.loads(response.headers["HX-Location"])["path"] == target
        else:
            assert response.status_code == 303
            assert response.headers["location"] == target
        assert (await invoice_of(jenny.customer.id, "paid"))["id"] == invoice["id"]
        again = await jenny.post(url, {"intent": intent})
        assert again.status_code == 303
        events = await audit_events("invoice.paid")
        assert len(events) == 1
        assert events[0]["object_id"] == invoice["id"]
        assert events[0]["before"]["status"] == "open"
        assert events[0]["after"]["status"] == "paid"
        shown = await jenny.get(target)
        assert f"Invoice {invoice['number']} was paid." in shown.text
        assert "Pay invoice" not in shown.text


async def test_pay_a_paid_invoice_is_refused(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        paid = await invoice_of(jenny.customer.id, "paid")
        response = await jenny.post(f"/portal/invoices/{paid['id']}/pay", {"intent": "p" * 22})
        assert response.status_code == 422
        assert "nothing left to pay" in response.text
        assert await audit_events("invoice.paid") == []


async def test_pay_without_a_payment_method(settings, demo) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        paid = await invoice_of(max_.customer.id, "paid")
        await Invoice.update(
            {Invoice.status: "open", Invoice.amount_paid: 0, Invoice.amount_remaining: 900}
        ).where(Invoice.id == paid["id"])
        page = await max_.get(f"/portal/invoices/{paid['id']}")
        assert "Add a payment method before paying this invoice." in page.text
        assert "Pay invoice" not in page.text
        response = await max_.post(
            f"/portal/invoices/{paid['id']}/pay", {"intent": "q" * 22}, htmx=True
        )
        assert response.status_code == 422
        assert "Add a payment method before paying this invoice." in response.text
        assert (await invoice_of(max_.customer.id, "open"))["id"] == paid["id"]


async def test_pay_someone_elses_invoice_is_404(settings, demo) -> None:
    jenny = await customer_by_email(JENNY)
    theirs = await invoice_of(jenny.id, "open")
    async with signed_in(settings, demo, MAX) as max_:
        for htmx in (False, True):
            response = await max_.post(
                f"/portal/invoices/{theirs['id']}/pay", {"intent": "r" * 22}, htmx=htmx
            )
            assert response.status_code == 404
    assert (await invoice_of(jenny.id, "open"))["id"] == theirs["id"]
    assert await audit_events("invoice.paid") == []


async def test_pay_needs_csrf_and_intent(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        invoice = await invoice_of(jenny.customer.id, "open")
        url = f"/portal/invoices/{invoice['id']}/pay"
        assert (await jenny.post(url, {"intent": "s" * 22}, csrf=False)).status_code == 403
        assert (await jenny.post(url, {})).status_code == 422
        assert (await invoice_of(jenny.customer.id, "open"))["id"] == invoice["id"]


async def test_pay_redirect_goes_to_the_hosted_page(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        invoice = await invoice_of(jenny.customer.id, "open")

        async def pay(invoice_id, *, idempotency_key):
            return PaymentResult(status="redirect", redirect_url="https://invoice.stripe.test/i/1")

        jenny.app.state.gateway.pay_invoice = pay
        url = f"/portal/invoices/{invoice['id']}/pay"
        response = await jenny.post(url, {"intent": "t" * 22})
        assert response.status_code == 303
        assert response.headers["location"] == "https://invoice.stripe.test/i/1"
        htmx = await jenny.post(url, {"intent": "u" * 22}, htmx=True)
        assert htmx.headers["HX-Redirect"] == "https://invoice.stripe.test/i/1"


async def test_switched_off(settings, demo) -> None:
    await set_features(demo, invoice_history={"enabled": False})
    async with signed_in(settings, demo, JENNY) as jenny:
        invoice = await invoice_of(jenny.customer.id, "open")
        overview = await jenny.get("/portal")
        assert 'href="/portal/invoices"' not in overview.text
        for url in ("/portal/invoices", f"/portal/invoices/{invoice['id']}",
                    f"/portal/invoices/{invoice['id']}/pdf"):  # fmt: skip
            assert (await jenny.get(url)).status_code == 404, url
        response = await jenny.post(f"/portal/invoices/{invoice['id']}/pay", {"intent": "v" * 22})
        assert response.status_code == 404
    assert (await invoice_of(jenny.customer.id, "open"))["id"] == invoice["id"]
