"""Customers on Stripe: billing details, tax ids, and bringing one customer's mirror up to date.

``update_customer`` merges the fields a customer changed with the mirror's current ones (Stripe
replaces whole addresses); ``refresh_customer`` and ``discover_customers`` are what sign-in uses
(``app.billing.stripe_fetch`` does the reading).
"""

from __future__ import annotations

from typing import Any

import stripe

from app.billing.gateway import CustomerDetails, GatewayError
from app.billing.stripe_actions import Keys, Outcome, StripeActions
from app.billing.stripe_client import is_missing, plain, replayed
from app.billing.stripe_errors import tax_id_error
from app.billing.stripe_fetch import customer_batch, discover_batch
from app.billing.tables import Customer


def _clean_details(details: CustomerDetails) -> dict[str, str]:
    """Given fields, trimmed; country codes upper case and two letters."""
    values: dict[str, str] = {}
    for name in CustomerDetails.__struct_fields__:
        value = getattr(details, name)
        if value is None:
            continue
        value = value.strip()
        if name.endswith("_country") and value:
            value = value.upper()
            if len(value) != 2 or not value.isalpha():
                raise GatewayError("Choose a country.", code="invalid_country", field=name)
        column = Customer._meta.get_column_by_name(name)
        limit = getattr(column, "length", None)
        if limit is not None and len(value) > limit:
            raise GatewayError(f"Use at most {limit} characters.", code="too_long", field=name)
        values[name] = value
    return values


def _address(current: Customer, values: dict[str, str], prefix: str) -> dict[str, str] | str:
    keys = ("line1", "line2", "city", "state", "postal_code", "country")
    merged = {}
    for key in keys:
        name = f"{prefix}{key}"
        value = values[name] if name in values else (getattr(current, name) or "")
        if value:
            merged[key] = value
    return merged or ""


async def update_customer(
    actions: StripeActions, customer_id: str, details: CustomerDetails, *, idempotency_key: str
) -> None:
    """``customers.update(name, phone, address, shipping)``: ``None`` leaves a field, ``""``
    clears it; Stripe replaces whole addresses, so the given fields are merged with the
    mirror's current ones."""
    values = _clean_details(details)

    async def work(keys: Keys) -> Outcome:
        current = await Customer.objects().where(Customer.id == customer_id).first()
        if current is None:
            raise GatewayError("Your account was not found.", code="resource_missing")
        params: dict[str, Any] = {}
        for name in ("name", "phone"):
            if name in values:
                params[name] = values[name]
        if any(k.startswith("address_") for k in values):
            params["address"] = _address(current, values, "address_")
        if any(k.startswith("shipping_") for k in values):
            address = _address(current, values, "shipping_address_")
            name = values.get("shipping_name", current.shipping_name or "")
            phone = values.get("shipping_phone", current.shipping_phone or "")
            if not address and not name and not phone:
                params["shipping"] = ""
            elif not name:
                raise GatewayError(
                    "Enter the name for the shipping address.",
                    code="missing_name",
                    field="shipping_name",
                )
            else:
                shipping: dict[str, Any] = {"name": name, "address": address or {}}
                if phone:
                    shipping["phone"] = phone
                params["shipping"] = shipping
        outcome = Outcome(customer_id, result={"customer": customer_id})
        if not params:
            return outcome
        customer = await actions.client.v1.customers.update_async(
            customer_id, params, keys("update")
        )
        outcome.batch.add(
            plain(await actions.client.v1.customers.retrieve_async(customer_id))
            if replayed(customer)
            else plain(customer)
        )
        return outcome

    await actions.intent(
        idempotency_key,
        "update_customer",
        {"customer": customer_id, "details": details},
        "Your details couldn't be saved.",
        work,
    )


async def add_tax_id(
    actions: StripeActions, customer_id: str, *, type: str, value: str, idempotency_key: str
) -> str:
    """``customers.tax_ids.create(type, value)``; returns the ``txi_`` id."""
    type_, value = type.strip().lower(), value.strip()
    if not type_:
        raise GatewayError("Choose a tax ID type.", code="invalid_tax_id_type", field="type")
    if not value:
        raise GatewayError("Enter a valid tax ID.", code="invalid_tax_id", field="value")

    async def work(keys: Keys) -> Outcome:
        tax_id = plain(
            await actions.client.v1.customers.tax_ids.create_async(
                customer_id, {"type": type_, "value": value}, keys("create")
            )
        )
        outcome = Outcome(customer_id, result={"tax_id": tax_id["id"]})
        outcome.batch.add(tax_id)
        return outcome

    result = await actions.intent(
        idempotency_key,
        "add_tax_id",
        {"customer": customer_id, "type": type_, "value": value},
        "The tax ID couldn't be added.",
        work,
        override=tax_id_error,
    )
    return result["tax_id"]


async def delete_tax_id(
    actions: StripeActions, customer_id: str, tax_id: str, *, idempotency_key: str
) -> None:
    """``customers.tax_ids.delete``; one that is already gone counts as deleted."""

    async def work(keys: Keys) -> Outcome:
        outcome = Outcome(customer_id, result={"tax_id": tax_id})
        try:
            await actions.client.v1.customers.tax_ids.delete_async(customer_id, tax_id)
        except stripe.InvalidRequestError as error:
            if not is_missing(error):
                raise
        outcome.batch.tax_id_deleted(tax_id)
        return outcome

    await actions.intent(
        idempotency_key,
        "delete_tax_id",
        {"customer": customer_id, "tax_id": tax_id},
        "The tax ID couldn't be removed.",
        work,
    )


async def refresh_customer(actions: StripeActions, customer_id: str) -> None:
    """Re-fetch the customer, all their subscriptions, recent invoices, payment methods and
    tax ids, and write them in one transaction (detached cards and deleted tax ids too)."""
    async with actions.guard("Your billing details couldn't be refreshed."):
        batch = await customer_batch(actions.client, customer_id)
    await batch.commit()


async def discover_customers(actions: StripeActions, email: str) -> list[str]:
    """``customers.list(email=…)`` (as typed and lower case) with each customer's
    subscriptions, mirrored; returns their ids, newest first. For sign-in when the mirror
    has no customer with that email."""
    async with actions.guard("Your account couldn't be looked up."):
        batch, ids = await discover_batch(actions.client, email)
    await batch.commit()
    return ids
