"""The overview page, the invoice history's pages, and the cards pages name."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.billing.queries import sql
from app.billing.queries.subscriptions import SubscriptionView, subscriptions
from app.billing.tables import Customer, Invoice, PaymentMethod

RECENT_INVOICES = 5

CARD_COLUMNS = (
    PaymentMethod.id,
    PaymentMethod.type,
    PaymentMethod.card_brand.as_alias("brand"),
    PaymentMethod.card_last4.as_alias("last4"),
    PaymentMethod.card_exp_month.as_alias("exp_month"),
    PaymentMethod.card_exp_year.as_alias("exp_year"),
)


class CardView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


class InvoiceRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: str | None
    status: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    description: str | None
    created: datetime
    due_date: datetime | None
    paid_at: datetime | None
    period_start: datetime | None
    period_end: datetime | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer
    subscriptions: list[SubscriptionView]
    default_payment_method: CardView | None
    recent_invoices: list[InvoiceRow]


class InvoicePage(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[InvoiceRow]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


INVOICE_COLUMNS = tuple(
    Invoice.status_transitions_paid_at.as_alias("paid_at")
    if name == "paid_at"
    else getattr(Invoice, name)
    for name in InvoiceRow.__struct_fields__
)


# The customer's invoices (drafts excluded), newest first: SQL built once (see ``sql``).
_INVOICES_SQL = (
    f'SELECT {sql.selected(INVOICE_COLUMNS)} FROM "{Invoice._meta.tablename}"'  # noqa: S608 (identifiers only; values are parameters)
    ' WHERE "customer" = {} AND "status" <> {} ORDER BY "created" DESC, "id" DESC'
    " LIMIT {} OFFSET {}"
)
_CARD_SQL = (
    f'SELECT {sql.selected(CARD_COLUMNS)} FROM "{PaymentMethod._meta.tablename}"'  # noqa: S608 (identifiers only; values are parameters)
    ' WHERE "id" = {} AND "customer" = {}'
)


async def _customer_invoices(customer_id: str, limit: int, offset: int = 0) -> list[dict]:
    return await Invoice.raw(_INVOICES_SQL, customer_id, "draft", limit, offset)


async def card(customer_id: str, payment_method_id: str | None) -> CardView | None:
    """One of the customer's payment methods; None for none, an unknown id or another
    customer's."""
    if not payment_method_id:
        return None
    rows = await PaymentMethod.raw(_CARD_SQL, payment_method_id, customer_id)
    return CardView(**rows[0]) if rows else None


async def overview(
    customer_id: str, *, now: datetime | None = None, customer: Customer | None = None
) -> Overview | None:
    """What the portal's overview page shows, in five queries (up to three more when
    subscriptions have a schedule or a discount), four when the caller passes the ``customer`` row
    it already read for ``customer_id`` (the signed-in one); None for an unknown or deleted
    customer."""
    if customer is None or customer.id != customer_id or customer.deleted:
        customer = (
            await Customer.objects()
            .where((Customer.id == customer_id) & Customer.deleted.eq(False))
            .first()
        )
    if customer is None:
        return None
    subs = await subscriptions(customer_id, now=now)
    default = await card(customer_id, customer.invoice_settings_default_payment_method)
    invoices = await _customer_invoices(customer_id, RECENT_INVOICES)
    return Overview(
        customer=customer,
        subscriptions=subs,
        default_payment_method=default,
        recent_invoices=[InvoiceRow(**row) for row in invoices],
    )


async def invoices_page(customer_id: str, page: int, per_page: int = 20) -> InvoicePage:
    """One page of the customer's invoices (drafts excluded), newest first; pages start at 1."""
    page = max(page, 1)
    per_page = max(per_page, 1)
    rows = await _customer_invoices(customer_id, per_page + 1, (page - 1) * per_page)
    return InvoicePage(
        rows=[InvoiceRow(**row) for row in rows[:per_page]],
        page=page,
        per_page=per_page,
        has_next=len(rows) > per_page,
    )
