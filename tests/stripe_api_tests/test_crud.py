"""CRUD round trips, lists, pagination and expansion through the real SDK."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.stripe_api import StripeAPIServer


async def test_customer_round_trip(stripe_api: StripeAPIServer, stripe_client) -> None:
    customer = await stripe_client.v1.customers.create_async(
        {
            "email": "ada@example.test",
            "name": "Ada",
            "phone": "+15555550100",
            "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
            "metadata": {"tenant": "t1", "plan": "basic"},
        }
    )
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.address.postal_code is None
    assert customer.address.city == "Springfield"
    assert isinstance(customer.created, int)

    updated = await stripe_client.v1.customers.update_async(
        customer.id,
        {
            "name": "Ada Lovelace",
            "shipping": {"name": "Ada", "address": {"line1": "2 Side St", "country": "GB"}},
            "metadata": {"plan": "", "seats": "3"},
        },
    )
    assert updated.name == "Ada Lovelace"
    assert updated.shipping.address.country == "GB"
    assert updated.metadata.to_dict() == {"tenant": "t1", "seats": "3"}

    fetched = await stripe_client.v1.customers.retrieve_async(customer.id)
    assert fetched.to_dict() == updated.to_dict()

    by_email = await stripe_client.v1.customers.list_async({"email": "ada@example.test"})
    assert [c.id for c in by_email.data] == [customer.id]
    assert by_email.url == "/v1/customers"
    found = await stripe_client.v1.customers.search_async({"query": "metadata['tenant']:'t1'"})
    assert [c.id for c in found.data] == [customer.id]

    update_event = stripe_api.events_of("customer.updated")[-1]
    assert update_event["data"]["previous_attributes"]["name"] == "Ada"

    gone = await stripe_client.v1.customers.delete_async(customer.id)
    assert gone.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.customers.retrieve_async(customer.id)
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    assert caught.value.param == "id"


async def test_default_payment_method_must_be_attached(stripe_api, stripe_client) -> None:
    customer = stripe_api.create_customer()
    stranger = stripe_api.create_payment_method(None)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.customers.update_async(
            customer["id"], {"invoice_settings": {"default_payment_method": stranger["id"]}}
        )
    assert caught.value.param == "invoice_settings[default_payment_method]"
    pm = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_mastercard", {"customer": customer["id"]}
    )
    assert pm.id.startswith("pm_")
    assert pm.card.brand == "mastercard"
    assert pm.card.last4 == "4444"
    updated = await stripe_client.v1.customers.update_async(
        customer["id"],
        {
            "invoice_settings": {"default_payment_method": pm.id},
            "expand": ["invoice_settings.default_payment_method"],
        },
    )
    assert updated.invoice_settings.default_payment_method.card.last4 == "4444"
    listed = await stripe_client.v1.payment_methods.list_async(
        {"customer": customer["id"], "type": "card"}
    )
    assert [p.id for p in listed.data] == [pm.id]
    detached = await stripe_client.v1.payment_methods.detach_async(pm.id)
    assert detached.customer is None
    again = await stripe_client.v1.customers.retrieve_async(customer["id"])
    assert again.invoice_settings.default_payment_method is None
    types = [e["type"] for e in stripe_api.events]
    assert "payment_method.attached" in types
    assert "payment_method.detached" in types


async def test_declining_card_cannot_be_attached(stripe_api, stripe_client) -> None:
    customer = stripe_api.create_customer()
    with pytest.raises(stripe.CardError) as caught:
        await stripe_client.v1.payment_methods.attach_async(
            "pm_card_chargeDeclined", {"customer": customer["id"]}
        )
    assert caught.value.http_status == 402
    assert caught.value.code == "card_declined"
    assert stripe_api.state.table("payment_method") == {}


async def test_tax_ids(stripe_api, stripe_client) -> None:
    customer = stripe_api.create_customer()
    tax_id = await stripe_client.v1.customers.tax_ids.create_async(
        customer["id"], {"type": "eu_vat", "value": "DE123456789"}
    )
    assert tax_id.id.startswith("txi_")
    assert tax_id.country == "DE"
    assert tax_id.verification.status == "pending"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.customers.tax_ids.create_async(
            customer["id"], {"type": "eu_vat", "value": "nonsense!"}
        )
    assert caught.value.code == "tax_id_invalid"
    listed = await stripe_client.v1.customers.tax_ids.list_async(customer["id"])
    assert [t.id for t in listed.data] == [tax_id.id]
    removed = await stripe_client.v1.customers.tax_ids.delete_async(customer["id"], tax_id.id)
    assert removed.deleted is True
    assert [e["type"] for e in stripe_api.events][-2:] == [
        "customer.tax_id.created",
        "customer.tax_id.deleted",
    ]


async def test_products_prices_and_filters(stripe_client) -> None:
    product = await stripe_client.v1.products.create_async(
        {
            "name": "Team",
            "default_price_data": {
                "currency": "eur",
                "unit_amount": 1200,
                "recurring": {"interval": "month"},
            },
        }
    )
    assert product.id.startswith("prod_")
    assert product.default_price.startswith("price_")
    yearly = await stripe_client.v1.prices.create_async(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 12000,
            "recurring": {"interval": "year"},
            "lookup_key": "team_yearly",
        }
    )
    once = await stripe_client.v1.prices.create_async(
        {"product": product.id, "currency": "eur", "unit_amount": 500}
    )
    assert once.type == "one_time"
    assert once.recurring is None
    await stripe_client.v1.prices.update_async(once.id, {"active": False})
    recurring = await stripe_client.v1.prices.list_async(
        {"type": "recurring", "product": product.id}
    )
    assert {p.id for p in recurring.data} == {product.default_price, yearly.id}
    active = await stripe_client.v1.prices.list_async({"active": False})
    assert [p.id for p in active.data] == [once.id]
    by_key = await stripe_client.v1.prices.list_async(
        {"lookup_keys": ["team_yearly"], "expand": ["data.product"]}
    )
    assert by_key.data[0].product.name == "Team"
    assert by_key.data[0].unit_amount_decimal == 12000
    products = await stripe_client.v1.products.list_async({"active": True})
    assert [p.id for p in products.data] == [product.id]


async def test_coupons_and_promotion_codes(stripe_client) -> None:
    coupon = await stripe_client.v1.coupons.create_async(
        {"percent_off": 25, "duration": "repeating", "duration_in_months": 3, "id": "SPRING"}
    )
    assert coupon.id == "SPRING"
    assert coupon.percent_off == 25.0
    assert coupon.valid
    promo = await stripe_client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SPRING25"}
    )
    assert promo.id.startswith("promo_")
    assert promo.promotion.coupon == "SPRING"
    found = await stripe_client.v1.promotion_codes.list_async({"code": "SPRING25", "active": True})
    assert [p.id for p in found.data] == [promo.id]
    await stripe_client.v1.promotion_codes.update_async(promo.id, {"active": False})
    none = await stripe_client.v1.promotion_codes.list_async({"code": "SPRING25", "active": True})
    assert none.data == []
    listed = await stripe_client.v1.coupons.list_async()
    assert [c.id for c in listed.data] == ["SPRING"]


async def test_pagination_over_250_customers(stripe_api, stripe_client) -> None:
    for index in range(250):
        stripe_api.create_customer(email=f"user{index:03d}@example.test")
    first = await stripe_client.v1.customers.list_async({"limit": 100})
    assert len(first.data) == 100
    assert first.has_more is True
    assert first.data[0].email == "user249@example.test"  # newest first
    second = await stripe_client.v1.customers.list_async(
        {"limit": 100, "starting_after": first.data[-1].id}
    )
    third = await stripe_client.v1.customers.list_async(
        {"limit": 100, "starting_after": second.data[-1].id}
    )
    assert (len(second.data), second.has_more) == (100, True)
    assert (len(third.data), third.has_more) == (50, False)
    back = await stripe_client.v1.customers.list_async(
        {"limit": 10, "ending_before": second.data[0].id}
    )
    assert [c.id for c in back.data] == [c.id for c in first.data[-10:]]
    assert back.has_more is True
    seen = [c.email async for c in first.auto_paging_iter()]
    assert len(seen) == len(set(seen)) == 250
    assert seen[-1] == "user000@example.test"
    default = await stripe_client.v1.customers.list_async()
    assert len(default.data) == 10
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.customers.list_async({"limit": 101})
    assert caught.value.param == "limit"


async def test_expand(stripe_api, stripe_client, catalog, paying_customer) -> None:
    subscription = stripe_api.create_subscription(
        customer=paying_customer["id"], items=[{"price": catalog["pro"]["id"]}]
    )
    plain = await stripe_client.v1.subscriptions.retrieve_async(subscription["id"])
    assert isinstance(plain.latest_invoice, str)
    assert isinstance(plain.customer, str)
    assert isinstance(plain["items"].data[0].price.product, str)
    expanded = await stripe_client.v1.subscriptions.retrieve_async(
        subscription["id"],
        {
            "expand": [
                "latest_invoice",
                "customer",
                "items.data.price.product",
                "customer.invoice_settings.default_payment_method",
            ]
        },
    )
    assert expanded.latest_invoice.object == "invoice"
    assert expanded.customer.email == "payer@example.test"
    assert expanded["items"].data[0].price.product.name == "Pro"
    assert expanded.customer.invoice_settings.default_payment_method.card.brand == "visa"
    listed = await stripe_client.v1.subscriptions.list_async(
        {
            "customer": paying_customer["id"],
            "expand": ["data.default_payment_method", "data.latest_invoice"],
        }
    )
    assert listed.data[0].latest_invoice.amount_paid == 3000
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.subscriptions.retrieve_async(
            subscription["id"], {"expand": ["nonexistent"]}
        )
    assert "cannot be expanded" in str(caught.value.user_message)


async def test_authentication_and_unknown_urls(stripe_api: StripeAPIServer) -> None:
    async with httpx.AsyncClient(base_url=stripe_api.url) as http:
        missing = await http.get("/v1/customers")
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "invalid_request_error"
        wrong = await http.get("/v1/customers", headers={"Authorization": "Bearer sk_live_123456"})
        assert wrong.status_code == 401
        assert "sk_live_****3456" in wrong.json()["error"]["message"]
        basic = await http.get("/v1/customers", auth=(stripe_api.api_key, ""))
        assert basic.status_code == 200
        assert basic.json()["object"] == "list"
        unknown = await http.get("/v1/nope", auth=(stripe_api.api_key, ""))
        assert unknown.status_code == 404
        assert "Unrecognized request URL (GET: /v1/nope)" in unknown.json()["error"]["message"]
        assert unknown.headers["request-id"].startswith("req_")


async def test_account(stripe_client) -> None:
    account = await stripe_client.v1.accounts.retrieve_current_async()
    assert account.id.startswith("acct_")
    assert account.business_profile.name == "Portico Test"
    assert account.settings.dashboard.display_name == "Portico Test"
