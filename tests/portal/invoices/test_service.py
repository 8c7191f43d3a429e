"""Invoice rules: page numbers, pagination past the end, drafts never shown, the feature switch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app import clock
from app.billing.tables import Invoice, InvoiceLine
from app.configuration.features import Features, InvoiceHistory
from app.portal.invoices import service
from tests.helpers import JENNY, MAX
from tests.portal.support import customer_by_email


@pytest.mark.parametrize(
    ("raw", "page"),
    [(None, 1), ("", 1), ("1", 1), ("3", 3), ("0", 1), ("-2", 1), ("abc", 1), ("2.5", 1),
     ("99999999999", 1)],
)  # fmt: skip
def test_page_number(raw: str | None, page: int) -> None:
    assert service.page_number(raw) == page


@pytest.mark.parametrize(("total", "pages"), [(0, 1), (1, 1), (20, 1), (21, 2), (40, 2), (41, 3)])
def test_page_count(total: int, pages: int) -> None:
    assert service.page_count(total) == pages


def test_feature_switch() -> None:
    assert service.enabled(Features())
    assert not service.enabled(Features(invoice_history=InvoiceHistory(enabled=False)))


async def add_invoices(customer_id: str, count: int, *, status: str = "paid") -> list[str]:
    now = clock.now()
    rows = [
        Invoice(
            id=f"in_test_{status}_{n:03d}",
            customer=customer_id,
            number=f"TEST-{status.upper()}-{n:03d}",
            status=status,
            currency="usd",
            subtotal=1000,
            total=1000,
            amount_due=1000,
            amount_paid=1000 if status == "paid" else 0,
            created=now - timedelta(days=400 + n),
        )
        for n in range(count)
    ]
    await Invoice.insert(*rows)
    return [row.id for row in rows]


async def test_history_pages_newest_first(demo) -> None:
    max_ = await customer_by_email(MAX)
    await add_invoices(max_.id, 25)  # plus the three seeded ones: 28
    first = await service.history(max_.id, 1)
    assert (first.page, first.pages, first.total) == (1, 2, 28)
    assert len(first.rows) == 20
    assert not first.has_newer
    assert first.has_older
    created = [row.created for row in first.rows]
    assert created == sorted(created, reverse=True)
    second = await service.history(max_.id, 2)
    assert len(second.rows) == 8
    assert second.has_newer
    assert not second.has_older
    assert second.rows[0].created <= first.rows[-1].created
    past_the_end = await service.history(max_.id, 9)
    assert past_the_end.page == 2
    assert past_the_end.rows == second.rows


async def test_drafts_are_never_shown(demo) -> None:
    jenny = await customer_by_email(JENNY)
    (draft,) = await add_invoices(jenny.id, 1, status="draft")
    history = await service.history(jenny.id, 1)
    assert draft not in [row.id for row in history.rows]
    with pytest.raises(service.NotFound):
        await service.invoice(jenny, draft)


async def test_someone_elses_invoice_is_not_found(demo) -> None:
    jenny = await customer_by_email(JENNY)
    max_ = await customer_by_email(MAX)
    theirs = (await service.history(max_.id, 1)).rows[0].id
    with pytest.raises(service.NotFound):
        await service.invoice(jenny, theirs)


async def test_invoice_detail(demo) -> None:
    jenny = await customer_by_email(JENNY)
    history = await service.history(jenny.id, 1)
    row = next(r for r in history.rows if r.status == "paid" and r.period_start != r.period_end)
    detail = await service.invoice(jenny, row.id)
    assert detail.number == row.number
    assert detail.lines
    assert detail.lines[0].quantity == 5
    assert detail.discount == 0
    assert detail.payment_method is not None
    assert detail.payment_method.last4 == "4242"
    assert "United States" in detail.billing_address
    assert not detail.payable
    open_row = next(r for r in history.rows if r.status == "open")
    assert (await service.invoice(jenny, open_row.id)).payable


async def test_discount_is_what_the_total_lacks(demo) -> None:
    jenny = await customer_by_email(JENNY)
    (invoice_id,) = await add_invoices(jenny.id, 1)
    await Invoice.update({Invoice.subtotal: 1250, Invoice.tax: 0, Invoice.total: 1000}).where(
        Invoice.id == invoice_id
    )
    await InvoiceLine.insert(
        InvoiceLine(id="il_test_1", invoice=invoice_id, amount=1250, currency="usd", quantity=1)
    )
    detail = await service.invoice(jenny, invoice_id)
    assert detail.discount == 250
