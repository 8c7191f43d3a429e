"""Bracket decoding and validation against the stripe package's Params TypedDicts."""

from __future__ import annotations

import pytest
import stripe

from tests.stripe_api.encoding import decode_query, encode_params, format_param
from tests.stripe_api.errors import StripeError
from tests.stripe_api.params import params_class, validate


def test_decodes_stripe_bracket_encoding() -> None:
    tree = decode_query(
        "items[0][price]=price_1&items[0][quantity]=2&items[1][id]=si_1&items[1][deleted]=true"
        "&expand[]=latest_invoice&expand[]=customer&metadata[plan]=gold&metadata[empty]="
    )
    assert tree == {
        "items": {
            "0": {"price": "price_1", "quantity": "2"},
            "1": {"id": "si_1", "deleted": "true"},
        },
        "expand": ["latest_invoice", "customer"],
        "metadata": {"plan": "gold", "empty": ""},
    }
    assert format_param(("items", 0, "pricee")) == "items[0][pricee]"


def test_validation_coerces_to_the_declared_types() -> None:
    tree = decode_query(
        "items[0][price]=price_1&items[0][quantity]=2&items[1][id]=si_1&items[1][deleted]=true"
        "&cancel_at_period_end=false&trial_end=now&proration_date=1735689600&pause_collection="
    )
    params = validate(tree, stripe.params.SubscriptionUpdateParams)
    assert params == {
        "items": [{"price": "price_1", "quantity": 2}, {"id": "si_1", "deleted": True}],
        "cancel_at_period_end": False,
        "trial_end": "now",
        "proration_date": 1735689600,
        "pause_collection": "",
    }


def test_round_trip_through_the_sdk_encoder() -> None:
    params = {
        "customer": "cus_1",
        "subscription_details": {"items": [{"price": "p", "quantity": 3}]},
    }
    tree = dict(encode_params(params))
    assert tree == {
        "customer": "cus_1",
        "subscription_details[items][0][price]": "p",
        "subscription_details[items][0][quantity]": "3",
    }
    validated = validate(
        decode_query("&".join(f"{k}={v}" for k, v in tree.items())),
        params_class("InvoiceCreatePreviewParams"),
    )
    assert validated["subscription_details"]["items"] == [{"price": "p", "quantity": 3}]


@pytest.mark.parametrize(
    ("query", "params", "code", "param"),
    [
        ("items[0][pricee]=p", "SubscriptionUpdateParams", "parameter_unknown", "items[0][pricee]"),
        ("emial=a@b.c", "CustomerCreateParams", "parameter_unknown", "emial"),
        (
            "proration_behavior=later",
            "SubscriptionUpdateParams",
            "parameter_invalid_enum",
            "proration_behavior",
        ),
        ("mode=rent", "checkout.SessionCreateParams", "parameter_invalid_enum", "mode"),
        ("type=xx_vat&value=1", "CustomerTaxIdCreateParams", "parameter_invalid_enum", "type"),
        ("type=eu_vat", "CustomerTaxIdCreateParams", "parameter_missing", "value"),
        (
            "promotion[coupon]=c",
            "PromotionCodeCreateParams",
            "parameter_missing",
            "promotion[type]",
        ),
        ("limit=ten", "CustomerListParams", "parameter_invalid_integer", "limit"),
        ("api_key=sk_test_x", "CustomerCreateParams", "parameter_unknown", "api_key"),
    ],
)
def test_rejections(query: str, params: str, code: str, param: str) -> None:
    with pytest.raises(StripeError) as caught:
        validate(decode_query(query), params_class(params))
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, code, param)


def test_free_text_unions_are_not_enums() -> None:
    params = validate(
        decode_query("description=&metadata="), params_class("SubscriptionUpdateParams")
    )
    assert params == {"description": "", "metadata": ""}
    params = validate(
        decode_query("cancel_at=1767225600"), params_class("SubscriptionUpdateParams")
    )
    assert params == {"cancel_at": 1767225600}


async def test_misspelt_parameter_through_the_sdk_fails(stripe_api, stripe_client) -> None:
    customer = stripe_api.create_customer(email="a@example.test")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.customers.update_async(
            customer["id"],
            {"invoice_settings": {"default_payment_methd": "pm_x"}},  # type: ignore[typeddict-unknown-key]
        )
    error = caught.value
    assert error.http_status == 400
    assert error.code == "parameter_unknown"
    assert error.param == "invoice_settings[default_payment_methd]"
    assert "Did you mean default_payment_method?" in str(error.user_message)


async def test_value_outside_literal_through_the_sdk_fails(
    stripe_api, stripe_client, catalog
) -> None:
    customer = stripe_api.create_customer()
    stripe_api.create_payment_method(customer["id"], default=True)
    subscription = stripe_api.create_subscription(
        customer=customer["id"], items=[{"price": catalog["basic"]["id"]}]
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.subscriptions.update_async(
            subscription["id"],
            {"proration_behavior": "prorate_later"},  # type: ignore[typeddict-item]
        )
    assert (caught.value.code, caught.value.param) == (
        "parameter_invalid_enum",
        "proration_behavior",
    )
    unchanged = await stripe_client.v1.subscriptions.retrieve_async(subscription["id"])
    assert unchanged.status == "active"
