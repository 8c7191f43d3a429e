"""Billing details: what the customer may change (the configuration's ``allowed_updates``), saving
through the gateway, and tax IDs (format-checked before the gateway sees them)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.billing.gateway import BillingGateway, CustomerDetails
from app.billing.tables import Customer, TaxId
from app.configuration.features import Features
from app.portal import activity
from app.portal.activity import Who
from app.portal.details import forms

ALL_GROUPS = ("name", "address", "phone", "shipping", "tax_id")
DETAILS_UPDATED = "customer.details_updated"
TAX_ID_ADDED = "customer.tax_id_added"
TAX_ID_REMOVED = "customer.tax_id_removed"


class NotFound(Exception):
    """No such tax ID for this customer."""


class TaxIdRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    value: str
    country: str | None
    verification_status: str
    created: datetime


def enabled(features: Features) -> bool:
    return features.customer_update.enabled


def allowed_updates(features: Features) -> list[str]:
    """The groups customers may change, in a fixed order; none when the feature is off."""
    if not features.customer_update.enabled:
        return []
    allowed = set(features.customer_update.allowed_updates)
    return [group for group in ALL_GROUPS if group in allowed]


def filter_details(details: CustomerDetails, allowed: list[str]) -> CustomerDetails:
    """Keep only the fields of allowed groups (everything else: ``None``, "leave as it is")."""
    keep = set(forms.fields_for(allowed))
    return CustomerDetails(
        **{
            name: getattr(details, name)
            for name in CustomerDetails.__struct_fields__
            if name in keep
        }
    )


async def tax_ids_of(customer_id: str) -> list[TaxIdRow]:
    rows = (
        await TaxId.select(
            TaxId.id,
            TaxId.type,
            TaxId.value,
            TaxId.country,
            TaxId.verification_status,
            TaxId.created,
        )
        .where(TaxId.customer == customer_id)
        .order_by(TaxId.created, TaxId.id)
    )
    return [TaxIdRow(**row) for row in rows]


async def save(
    gateway: BillingGateway,
    who: Who,
    customer: Customer,
    details: CustomerDetails,
    allowed: list[str],
    *,
    key: str,
) -> dict[str, object]:
    """Send the allowed fields to the gateway; record what changed. Returns the changed fields'
    new values (empty when nothing changed: then nothing is sent). The same form sent again after
    its first submit changed billing but died before recording it records the values it sent."""
    details = filter_details(details, allowed)
    before, after = forms.changes(customer, details)
    state = await activity.replay(who, DETAILS_UPDATED, key)
    if state is activity.Replay.NEW and not after:
        return after
    await gateway.update_customer(customer.id, details, idempotency_key=key)
    if state is activity.Replay.APPLIED:
        sent = {name: getattr(details, name) for name in CustomerDetails.__struct_fields__}
        after = {name: value or None for name, value in sent.items() if value is not None}
    if after:
        await activity.record_once(
            who,
            DETAILS_UPDATED,
            key=key,
            object_type="customer",
            object_id=customer.id,
            before=before,
            after=after,
            replay=state,
        )
    return after


async def add_tax_id(
    gateway: BillingGateway, who: Who, customer: Customer, *, type_code: str, value: str, key: str
) -> str:
    """Add a tax ID whose format was checked (``forms.read_tax_id``); returns its id."""
    state = await activity.replay(who, TAX_ID_ADDED, key)
    tax_id = await gateway.add_tax_id(customer.id, type=type_code, value=value, idempotency_key=key)
    await activity.record_once(
        who,
        TAX_ID_ADDED,
        key=key,
        object_type="tax_id",
        object_id=tax_id,
        after={"customer": customer.id, "type": type_code, "value": value},
        replay=state,
    )
    return tax_id


async def remove_tax_id(
    gateway: BillingGateway, who: Who, customer: Customer, tax_id: str, *, key: str
) -> TaxIdRow | None:
    """Remove one of the customer's tax IDs. ``NotFound`` for a tax ID the customer does not have
    (unless this very form already removed it: then the same answer as the first time, None)."""
    found = next((t for t in await tax_ids_of(customer.id) if t.id == tax_id), None)
    if found is None:
        state = await activity.replay(who, TAX_ID_REMOVED, key)
        if state is activity.Replay.NEW:
            raise NotFound(tax_id)
        if state is activity.Replay.APPLIED:  # removed, but the first submit died before this
            await activity.record_once(
                who,
                TAX_ID_REMOVED,
                key=key,
                object_type="tax_id",
                object_id=tax_id,
                after={"customer": None},
                replay=activity.Replay.APPLIED,
            )
        return None
    await gateway.delete_tax_id(customer.id, found.id, idempotency_key=key)
    await activity.record_once(
        who,
        TAX_ID_REMOVED,
        key=key,
        object_type="tax_id",
        object_id=found.id,
        before={"customer": customer.id, "type": found.type, "value": found.value},
    )
    return found
