"""Billing details and tax ids in the sandbox."""

from __future__ import annotations

import pytest

from app.billing.gateway import CustomerDetails, GatewayError
from app.billing.sandbox_customers import tax_id_country
from app.billing.tables import Customer, TaxId
from tests.billing.sandbox_world import NOW, key

pytestmark = pytest.mark.usefixtures("db")


async def _customer(world) -> Customer:
    found = await Customer.objects().where(Customer.id == world.customer).first()
    assert found is not None
    return found


async def test_update_customer_none_keeps_and_empty_clears(world):
    details = CustomerDetails(
        name="Jenny R. Rosen",
        phone="",
        address_line2="Suite 300",
        address_country="gb",
        shipping_name="Jenny at work",
    )
    await world.gateway.update_customer(world.customer, details, idempotency_key=key())
    customer = await _customer(world)
    assert customer.name == "Jenny R. Rosen"
    assert customer.phone is None
    assert customer.address_line1 == "510 Townsend St"  # None: unchanged
    assert customer.address_line2 == "Suite 300"
    assert customer.address_country == "GB"
    assert customer.shipping_name == "Jenny at work"
    assert customer.email == "jenny.rosen@example.com"


async def test_update_customer_rejects_bad_country(world):
    with pytest.raises(GatewayError) as raised:
        await world.gateway.update_customer(
            world.customer,
            CustomerDetails(name="X", address_country="USA"),
            idempotency_key=key(),
        )
    assert raised.value.field == "address_country"
    assert (await _customer(world)).name == "Jenny Rosen"  # nothing half-written


async def test_tax_ids(world):
    first = key()
    tax_id = await world.gateway.add_tax_id(
        world.customer, type="eu_vat", value="DE123456789", idempotency_key=first
    )
    assert tax_id.startswith("txi_")
    # A double submit returns the same id and adds nothing.
    again = await world.gateway.add_tax_id(
        world.customer, type="eu_vat", value="DE123456789", idempotency_key=first
    )
    assert again == tax_id
    row = await TaxId.objects().where(TaxId.id == tax_id).first()
    assert (row.country, row.verification_status, row.created) == ("DE", "pending", NOW)
    assert await TaxId.count() == 1

    await world.gateway.delete_tax_id(world.customer, tax_id, idempotency_key=key())
    assert await TaxId.count() == 0
    with pytest.raises(GatewayError, match="no longer on your account"):
        await world.gateway.delete_tax_id(world.customer, tax_id, idempotency_key=key())


@pytest.mark.parametrize(
    ("type_", "value", "country"),
    [
        ("eu_vat", "FR12345678901", "FR"),
        ("eu_vat", "EL123456789", "GR"),
        ("gb_vat", "GB123456789", "GB"),
        ("us_ein", "12-3456789", "US"),
        ("au_abn", "12345678912", "AU"),
        ("eu_oss_vat", "EU123456789", None),
    ],
)
def test_tax_id_country(type_, value, country):
    assert tax_id_country(type_, value) == country


async def test_refresh_is_a_no_op(world):
    assert await world.gateway.refresh_customer(world.customer) is None
