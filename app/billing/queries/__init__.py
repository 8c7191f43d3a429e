"""Read-side queries for the pages. They read the local mirror only and never call Stripe.

Everything a page needs comes back as plain frozen structs, fetched in a fixed, small number of
queries (no query per subscription, item or invoice). Pages use this package's names
(``queries.subscriptions(…)``); the modules behind them:

- ``customers``: which customer an email address signs in as;
- ``subscriptions``: the customer's subscriptions, with the one "next charge" / "access ends" rule;
- ``overview``: the overview page, invoice history pages, cards.
"""

from app.billing.queries.customers import choose_customer, explain_choice
from app.billing.queries.overview import (
    CARD_COLUMNS,
    INVOICE_COLUMNS,
    RECENT_INVOICES,
    CardView,
    InvoicePage,
    InvoiceRow,
    Overview,
    card,
    invoices_page,
    overview,
)
from app.billing.queries.subscriptions import (
    ACTIVE_STATUSES,
    RECENTLY_ENDED,
    Discount,
    NextCharge,
    PendingChange,
    PlanItem,
    SubscriptionView,
    subscription,
    subscriptions,
)

__all__ = [
    "ACTIVE_STATUSES",
    "CARD_COLUMNS",
    "INVOICE_COLUMNS",
    "RECENTLY_ENDED",
    "RECENT_INVOICES",
    "CardView",
    "Discount",
    "InvoicePage",
    "InvoiceRow",
    "NextCharge",
    "Overview",
    "PendingChange",
    "PlanItem",
    "SubscriptionView",
    "card",
    "choose_customer",
    "explain_choice",
    "invoices_page",
    "overview",
    "subscription",
    "subscriptions",
]
