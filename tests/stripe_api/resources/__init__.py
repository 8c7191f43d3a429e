"""Endpoint handlers, one module per Stripe object family.

Importing this package registers every route in :data:`..routing.ROUTES`.
"""

from . import (
    catalog,
    checkout,
    customers,
    discounts,
    events,
    invoices,
    payment_methods,
    schedules,
    setup_intents,
    subscriptions,
)

__all__ = [
    "catalog",
    "checkout",
    "customers",
    "discounts",
    "events",
    "invoices",
    "payment_methods",
    "schedules",
    "setup_intents",
    "subscriptions",
]
