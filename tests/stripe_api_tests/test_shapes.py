"""Rendered objects use exactly the field names of the SDK's models (no invented fields).

Each object the server renders is compared with the ``stripe`` package's class for it: every
key must be declared there, nested objects recursively, and every non-optional field the
model declares must be present.
"""

from __future__ import annotations

import typing
from typing import Any

import pytest
import stripe
from stripe.checkout import Session

from tests.stripe_api import StripeAPIServer

MODELS: dict[str, type] = {
    "account": stripe.Account,
    "checkout.session": Session,
    "coupon": stripe.Coupon,
    "customer": stripe.Customer,
    "discount": stripe.Discount,
    "event": stripe.Event,
    "invoice": stripe.Invoice,
    "invoiceitem": stripe.InvoiceItem,
    "line_item": stripe.InvoiceLineItem,
    "payment_method": stripe.PaymentMethod,
    "plan": stripe.Plan,
    "price": stripe.Price,
    "product": stripe.Product,
    "promotion_code": stripe.PromotionCode,
    "setup_intent": stripe.SetupIntent,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "subscription_schedule": stripe.SubscriptionSchedule,
    "tax_id": stripe.TaxId,
}
# Fields Stripe only returns when asked (``expand``/``include``) or on deleted objects.
OPTIONAL_IN_RESPONSES = {
    "deleted",
    "payments",
    "tiers",
    "currency_options",
    "line_items",
    "sources",
    "subscriptions",
    "tax_ids",
    "cash_balance",
    "invoice_credit_balance",
    "tax",
    "individual",
    "external_accounts",
}


def _annotations(cls: type) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(getattr(klass, "__annotations__", {}))
    return {k: v for k, v in merged.items() if not k.startswith("_") and not k.isupper()}


def _nested(annotation: Any) -> list[type]:
    found: list[type] = []
    if isinstance(annotation, type) and issubclass(annotation, stripe.StripeObject):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found.extend(_nested(arg))
    return found


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def check(value: dict[str, Any], cls: type, path: str, problems: list[str]) -> None:
    fields = _annotations(cls)
    for key, sub in value.items():
        if key not in fields:
            problems.append(f"{path}.{key} is not a field of {cls.__qualname__}")
            continue
        nested = [n for n in _nested(fields[key]) if "." in n.__qualname__]
        kind = sub.get("object") if isinstance(sub, dict) else None
        if isinstance(kind, dict):  # an event's data.object
            check(kind, MODELS[kind["object"]], f"{path}.{key}.object", problems)
        elif isinstance(kind, str) and kind in MODELS:
            check(sub, MODELS[sub["object"]], f"{path}.{key}", problems)
        elif kind == "list":
            for index, item in enumerate(sub["data"]):
                if isinstance(item, dict) and item.get("object") in MODELS:
                    check(item, MODELS[item["object"]], f"{path}.{key}[{index}]", problems)
        elif isinstance(sub, dict) and nested:
            check(sub, nested[0], f"{path}.{key}", problems)
        elif isinstance(sub, list) and nested:
            for index, item in enumerate(sub):
                if isinstance(item, dict):
                    check(item, nested[0], f"{path}.{key}[{index}]", problems)
    if "object" in fields:  # top-level resources: required fields must be there
        for key, annotation in fields.items():
            if key not in value and not _optional(annotation) and key not in OPTIONAL_IN_RESPONSES:
                problems.append(f"{path} lacks {cls.__qualname__}.{key}")


@pytest.fixture
def everything(stripe_api: StripeAPIServer, catalog, paying_customer) -> list[dict[str, Any]]:
    customer = paying_customer["id"]
    stripe_api.create("tax_id", customer=customer, type="eu_vat", value="FR12345678901")
    coupon = stripe_api.create_coupon(amount_off=500, currency="usd", duration="once")
    promo = stripe_api.create_promotion_code(promotion={"type": "coupon", "coupon": coupon["id"]})
    subscription = stripe_api.create_subscription(
        customer=customer,
        items=[{"price": catalog["basic"]["id"]}],
        discounts=[{"promotion_code": promo["id"]}],
    )
    stripe_api.call("POST", "/v1/subscription_schedules", from_subscription=subscription["id"])
    stripe_api.call(
        "POST",
        f"/v1/subscriptions/{subscription['id']}",
        items=[{"id": subscription["items"]["data"][0]["id"], "price": catalog["pro"]["id"]}],
        proration_behavior="create_prorations",
    )
    stripe_api.call(
        "POST",
        "/v1/checkout/sessions",
        mode="setup",
        currency="usd",
        customer=customer,
        success_url="https://example.test/ok",
    )
    stripe_api.call(
        "POST", "/v1/setup_intents", customer=customer, payment_method="pm_card_visa", confirm=True
    )
    stripe_api.create_invoice(customer, amount=700)
    objects = [obj for _, obj in stripe_api.state.iter_objects() if obj.get("object") != "event"]
    rendered = [stripe_api.get(obj["id"]) for obj in objects]
    rendered += stripe_api.events[-5:]
    rendered.append(stripe_api.call("GET", "/v1/account"))
    rendered.append(
        stripe_api.call("POST", "/v1/invoices/create_preview", subscription=subscription["id"])
    )
    return [obj for obj in rendered if obj]


def test_rendered_objects_match_the_sdk_models(everything: list[dict[str, Any]]) -> None:
    kinds = {obj["object"] for obj in everything}
    assert kinds >= set(MODELS) - {"line_item", "plan", "subscription_item"}
    problems: list[str] = []
    for obj in everything:
        check(obj, MODELS[obj["object"]], obj["object"], problems)
    assert problems == [], "\n".join(problems)
