"""The sandbox's customer-side writes: cards, the default payment method, billing details and tax
ids. Each function is the ``work`` of one idempotent gateway call (it runs inside the call's write
transaction) and returns the result the idempotency record stores."""

from __future__ import annotations

from typing import Any

from app import clock
from app.billing import sandbox_store as store
from app.billing import test_cards
from app.billing.gateway import CardInput, CustomerDetails, GatewayError
from app.billing.tables import Customer, PaymentMethod, Subscription, TaxId

# Tax id types whose country is not their first two letters.
_TAX_ID_COUNTRY = {"eu_oss_vat": None, "gb_vat": "GB"}
# VAT numbers that do not start with their ISO country code.
_VAT_PREFIX_COUNTRY = {"EL": "GR", "XI": "GB"}


async def add_card(customer_id: str, card: CardInput, *, make_default: bool) -> dict[str, Any]:
    """Attach a Stripe test card (see ``test_cards``); only brand, last 4, expiry, funding and
    country are stored. ``make_default`` sets ``invoice_settings.default_payment_method``."""
    now = clock.now()
    owner = await store.customer(customer_id)
    details = test_cards.check_card(card, now)
    pm = PaymentMethod(
        id=store.new_id("pm"),
        customer=owner.id,
        type="card",
        card_brand=details.brand,
        card_last4=details.last4,
        card_exp_month=details.exp_month,
        card_exp_year=details.exp_year,
        card_funding=details.funding,
        card_country=details.country,
        billing_details_name=card.name.strip()[:256] or None,
        created=now,
        metadata={store.CHARGES_KEY: "decline"} if details.charges_decline else {},
    )
    await PaymentMethod.insert(pm)
    if make_default:
        await Customer.update({Customer.invoice_settings_default_payment_method: pm.id}).where(
            Customer.id == owner.id
        )
    return {"payment_method": pm.id}


async def _attached(customer_id: str, payment_method_id: str) -> PaymentMethod:
    pm = await PaymentMethod.objects().where(PaymentMethod.id == payment_method_id).first()
    if pm is None or pm.customer != customer_id:
        raise GatewayError(
            "That payment method is no longer on your account.", code="resource_missing"
        )
    return pm


async def set_default_payment_method(customer_id: str, payment_method_id: str) -> dict[str, Any]:
    await store.customer(customer_id)
    pm = await _attached(customer_id, payment_method_id)
    await Customer.update({Customer.invoice_settings_default_payment_method: pm.id}).where(
        Customer.id == customer_id
    )
    return {"payment_method": pm.id}


async def detach_payment_method(customer_id: str, payment_method_id: str) -> dict[str, Any]:
    """Stripe's detach: the method leaves the customer (``customer = null``); if it was the
    default, the customer has no default any more, and subscriptions that named it as their own
    default fall back to the customer's. (Keeping one method while a subscription is active is the
    portal service's rule.)"""
    pm = await _attached(customer_id, payment_method_id)
    await PaymentMethod.update({PaymentMethod.customer: None}).where(PaymentMethod.id == pm.id)
    await Customer.update({Customer.invoice_settings_default_payment_method: None}).where(
        (Customer.id == customer_id) & (Customer.invoice_settings_default_payment_method == pm.id)
    )
    await Subscription.update({Subscription.default_payment_method: None}).where(
        (Subscription.customer == customer_id) & (Subscription.default_payment_method == pm.id)
    )
    return {"payment_method": pm.id}


def _column_length(name: str) -> int | None:
    column = Customer._meta.get_column_by_name(name)
    return getattr(column, "length", None)


async def update_customer(customer_id: str, details: CustomerDetails) -> dict[str, Any]:
    """``None`` leaves a field as it is; an empty string clears it. Country codes are stored upper
    case and must be two letters (other format rules are the portal service's)."""
    await store.customer(customer_id)
    values: dict[Any, Any] = {}
    for name in CustomerDetails.__struct_fields__:
        value = getattr(details, name)
        if value is None:
            continue
        value = value.strip()
        if name.endswith("_country") and value:
            value = value.upper()
            if len(value) != 2 or not value.isalpha():
                raise GatewayError("Choose a country.", code="invalid_country", field=name)
        limit = _column_length(name)
        if limit is not None and len(value) > limit:
            raise GatewayError(f"Use at most {limit} characters.", code="too_long", field=name)
        values[getattr(Customer, name)] = value or None
    if values:
        await Customer.update(values).where(Customer.id == customer_id)
    return {"customer": customer_id}


def tax_id_country(type_: str, value: str) -> str | None:
    """Stripe derives a tax id's country from its type; EU VAT numbers carry theirs in front."""
    if type_ == "eu_vat":
        prefix = value.strip()[:2].upper()
        if len(prefix) == 2 and prefix.isalpha():
            return _VAT_PREFIX_COUNTRY.get(prefix, prefix)
        return None
    if type_ in _TAX_ID_COUNTRY:
        return _TAX_ID_COUNTRY[type_]
    prefix = type_.split("_", 1)[0]
    return prefix.upper() if len(prefix) == 2 and prefix.isalpha() else None


async def add_tax_id(customer_id: str, type_: str, value: str) -> dict[str, Any]:
    await store.customer(customer_id)
    type_, value = type_.strip().lower(), value.strip()
    if not type_ or len(type_) > 16:
        raise GatewayError("Choose a tax ID type.", code="invalid_tax_id_type", field="type")
    if not value or len(value) > 64:
        raise GatewayError("Enter a valid tax ID.", code="invalid_tax_id", field="value")
    row = TaxId(
        id=store.new_id("txi"),
        customer=customer_id,
        type=type_,
        value=value,
        country=tax_id_country(type_, value),
        verification_status="pending",
        created=clock.now(),
    )
    await TaxId.insert(row)
    return {"tax_id": row.id}


async def delete_tax_id(customer_id: str, tax_id: str) -> dict[str, Any]:
    deleted = (
        await TaxId.delete()
        .where((TaxId.id == tax_id) & (TaxId.customer == customer_id))
        .returning(TaxId.id)
    )
    if not deleted:
        raise GatewayError("That tax ID is no longer on your account.", code="resource_missing")
    return {"tax_id": tax_id}
