"""Payment methods (cards only), Stripe's test cards, and setup intents.

Test cards behave as documented by Stripe: ``pm_card_visa`` (4242 4242 4242 4242),
``pm_card_visa_debit``, ``pm_card_mastercard`` (5555 5555 5555 4444), ``pm_card_amex`` work;
``pm_card_chargeDeclined`` (4000 0000 0000 0002) and
``pm_card_chargeDeclinedInsufficientFunds`` (4000 0000 0000 9995) are declined when they are
attached or set up (402 ``card_declined``); ``pm_card_chargeCustomerFail``
(4000 0000 0000 0341) attaches fine but every charge is declined.  Using a ``pm_card_*``
token where a payment method id is expected creates a fresh ``pm_...`` object, like Stripe.

Modelled: create (``card[number]`` or ``card[token]=tok_visa``), retrieve, update
(billing details, metadata, expiry), list (``customer``, ``type``), the customer-scoped list,
attach (``payment_method.attached``), detach (clears the customer's and subscriptions'
default payment method; ``payment_method.detached``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..errors import StripeError, card_declined, invalid, no_such
from ..objects import ADDRESS_KEYS, address, paginate, previous_attributes, update_metadata
from ..routing import Context, route
from ..state import State

# number -> (brand, funding, behaviour, decline_code)
TEST_CARDS: dict[str, tuple[str, str, str, str | None]] = {
    "4242424242424242": ("visa", "credit", "ok", None),
    "4000056655665556": ("visa", "debit", "ok", None),
    "5555555555554444": ("mastercard", "credit", "ok", None),
    "378282246310005": ("amex", "credit", "ok", None),
    "4000000000000002": ("visa", "credit", "decline", "generic_decline"),
    "4000000000009995": ("visa", "credit", "decline", "insufficient_funds"),
    "4000000000000341": ("visa", "credit", "charge_decline", "generic_decline"),
}
TOKENS = {
    "visa": "4242424242424242",
    "visa_debit": "4000056655665556",
    "mastercard": "5555555555554444",
    "amex": "378282246310005",
    "chargeDeclined": "4000000000000002",
    "chargeDeclinedInsufficientFunds": "4000000000009995",
    "chargeCustomerFail": "4000000000000341",
}


def card_number_for_token(token: str) -> str | None:
    for prefix in ("pm_card_", "tok_"):
        if token.startswith(prefix):
            return TOKENS.get(token[len(prefix) :])
    return None


def new_card(
    state: State,
    number: str,
    *,
    exp_month: int = 12,
    exp_year: int | None = None,
    billing_details: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    number = number.replace(" ", "")
    if number not in TEST_CARDS and (not number.isdigit() or not 13 <= len(number) <= 19):
        raise StripeError(
            402,
            "Your card number is incorrect.",
            type="card_error",
            code="incorrect_number",
            param="number",
        )
    brand, funding, behaviour, decline_code = TEST_CARDS.get(number, ("visa", "credit", "ok", None))
    details = billing_details or {}
    pm = {
        "id": state.new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": address(details.get("address")) or dict.fromkeys(ADDRESS_KEYS),
            "email": details.get("email"),
            "name": details.get("name"),
            "phone": details.get("phone"),
            "tax_id": None,
        },
        "card": {
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year or 2034,
            "fingerprint": hashlib.sha256(number.encode()).hexdigest()[:16],
            "funding": funding,
            "generated_from": None,
            "last4": number[-4:],
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": state.now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "type": "card",
        "_behaviour": behaviour,
        "_decline_code": decline_code,
    }
    return state.insert("payment_method", pm)


def resolve(state: State, token_or_id: str, param: str) -> dict[str, Any]:
    """A stored payment method, or a new one for a ``pm_card_*`` test token."""
    number = card_number_for_token(token_or_id)
    if number is not None:
        return new_card(state, number)
    return state.require("payment_method", token_or_id, param=param, status=400)


def check_setup(pm: dict[str, Any]) -> None:
    """Cards that decline on setup (4000 0000 0000 0002) fail here."""
    if pm.get("_behaviour") == "decline":
        raise card_declined(decline_code=pm["_decline_code"], payment_method=pm["id"])


def charge(pm: dict[str, Any], *, persist: bool) -> None:
    """Raise Stripe's card error when charging ``pm`` fails."""
    if pm.get("_behaviour") in ("decline", "charge_decline"):
        raise card_declined(
            decline_code=pm.get("_decline_code") or "generic_decline",
            persist=persist,
            payment_method=pm["id"],
        )


def attach(
    state: State, token_or_id: str, customer: dict[str, Any], param: str = "payment_method"
) -> dict[str, Any]:
    pm = resolve(state, token_or_id, param)
    if pm["customer"] == customer["id"]:
        return pm
    if pm["customer"] is not None:
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param,
        )
    check_setup(pm)
    pm["customer"] = customer["id"]
    state.emit("payment_method.attached", pm)
    return pm


def require_attached(state: State, pm_id: str, customer_id: str, param: str) -> dict[str, Any]:
    pm = state.require("payment_method", pm_id, param=param, status=400)
    if pm["customer"] != customer_id:
        raise StripeError(
            400,
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            code="resource_missing",
            param=param,
        )
    return pm


def detach(state: State, pm: dict[str, Any]) -> None:
    customer = state.get("customer", pm["customer"])
    pm["customer"] = None
    if customer and customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        before = dict(customer, invoice_settings=dict(customer["invoice_settings"]))
        customer["invoice_settings"]["default_payment_method"] = None
        state.emit("customer.updated", customer, previous_attributes(state, before, customer))
    for subscription in state.table("subscription").values():
        if subscription.get("default_payment_method") == pm["id"]:
            before = dict(subscription)
            subscription["default_payment_method"] = None
            state.emit(
                "customer.subscription.updated",
                subscription,
                previous_attributes(state, before, subscription),
            )
    state.emit("payment_method.detached", pm)


@route("POST", "/v1/payment_methods", "PaymentMethodCreateParams")
def create(ctx: Context) -> dict[str, Any]:
    if ctx.params.get("type", "card") != "card":
        raise invalid("Only card payment methods are modelled by this test server.", "type")
    card = ctx.params.get("card") or {}
    number = card.get("number") or card_number_for_token(card.get("token", "")) or ""
    if not number:
        raise StripeError(
            400,
            "Missing required param: card[number].",
            code="parameter_missing",
            param="card[number]",
        )
    pm = new_card(
        ctx.state,
        number,
        exp_month=int(card.get("exp_month", 12)),
        exp_year=int(card["exp_year"]) if card.get("exp_year") else None,
        billing_details=ctx.params.get("billing_details"),
        metadata=ctx.params.get("metadata"),
    )
    if ctx.params.get("customer"):
        customer = ctx.state.require(
            "customer", ctx.params["customer"], param="customer", status=400
        )
        attach(ctx.state, pm["id"], customer)
    return pm


@route("GET", "/v1/payment_methods/{payment_method}", "PaymentMethodRetrieveParams")
def retrieve(ctx: Context) -> dict[str, Any]:
    if card_number_for_token(ctx.args["payment_method"]):
        return resolve(ctx.state, ctx.args["payment_method"], "payment_method")
    return ctx.state.require("payment_method", ctx.args["payment_method"])


@route("POST", "/v1/payment_methods/{payment_method}", "PaymentMethodUpdateParams")
def update(ctx: Context) -> dict[str, Any]:
    pm = ctx.state.require("payment_method", ctx.args["payment_method"])
    before = dict(pm, billing_details=dict(pm["billing_details"]), card=dict(pm["card"]))
    details = ctx.params.get("billing_details")
    if details:
        for key in ("email", "name", "phone"):
            if key in details:
                pm["billing_details"][key] = details[key] or None
        if "address" in details:
            pm["billing_details"]["address"] = address(details["address"] or None) or dict.fromkeys(
                ADDRESS_KEYS
            )
    card = ctx.params.get("card") or {}
    for key in ("exp_month", "exp_year"):
        if key in card:
            pm["card"][key] = card[key]
    if "metadata" in ctx.params:
        pm["metadata"] = update_metadata(pm["metadata"], ctx.params["metadata"])
    if "allow_redisplay" in ctx.params:
        pm["allow_redisplay"] = ctx.params["allow_redisplay"]
    ctx.state.emit("payment_method.updated", pm, previous_attributes(ctx.state, before, pm))
    return pm


@route("GET", "/v1/payment_methods", "PaymentMethodListParams")
def list_payment_methods(ctx: Context) -> dict[str, Any]:
    items = ctx.state.all("payment_method")
    if "customer" in ctx.params:
        ctx.state.require("customer", ctx.params["customer"], param="customer", status=400)
        items = [pm for pm in items if pm["customer"] == ctx.params["customer"]]
    if "type" in ctx.params:
        items = [pm for pm in items if pm["type"] == ctx.params["type"]]
    return paginate(ctx.state, items, ctx.params, "/v1/payment_methods")


@route("GET", "/v1/customers/{customer}/payment_methods", "CustomerPaymentMethodListParams")
def list_customer_payment_methods(ctx: Context) -> dict[str, Any]:
    customer = ctx.state.require("customer", ctx.args["customer"])
    items = [pm for pm in ctx.state.all("payment_method") if pm["customer"] == customer["id"]]
    if "type" in ctx.params:
        items = [pm for pm in items if pm["type"] == ctx.params["type"]]
    url = f"/v1/customers/{customer['id']}/payment_methods"
    return paginate(ctx.state, items, ctx.params, url)


@route(
    "GET",
    "/v1/customers/{customer}/payment_methods/{payment_method}",
    "CustomerPaymentMethodRetrieveParams",
)
def retrieve_customer_payment_method(ctx: Context) -> dict[str, Any]:
    pm = ctx.state.get("payment_method", ctx.args["payment_method"])
    if pm is None or pm["customer"] != ctx.args["customer"]:
        raise no_such("payment_method", ctx.args["payment_method"])
    return pm


@route("POST", "/v1/payment_methods/{payment_method}/attach", "PaymentMethodAttachParams")
def attach_endpoint(ctx: Context) -> dict[str, Any]:
    if "customer" not in ctx.params:
        raise StripeError(
            400, "Missing required param: customer.", code="parameter_missing", param="customer"
        )
    customer = ctx.state.require("customer", ctx.params["customer"], param="customer", status=400)
    if not card_number_for_token(ctx.args["payment_method"]):
        ctx.state.require("payment_method", ctx.args["payment_method"])
    return attach(ctx.state, ctx.args["payment_method"], customer)


@route("POST", "/v1/payment_methods/{payment_method}/detach", "PaymentMethodDetachParams")
def detach_endpoint(ctx: Context) -> dict[str, Any]:
    pm = ctx.state.require("payment_method", ctx.args["payment_method"])
    if pm["customer"] is None:
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible."
        )
    detach(ctx.state, pm)
    return pm
