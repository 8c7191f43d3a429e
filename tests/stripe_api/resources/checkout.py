"""Checkout Sessions in ``setup`` mode, plus the hosted page's completion step.

Modelled: create (``mode=setup`` with ``customer``, ``success_url``, ``cancel_url``,
``currency`` or ``allowed_payment_method_types``, ``client_reference_id``, ``metadata``,
``setup_intent_data[metadata]``, ``expires_at``), retrieve (``expand[]=setup_intent``), list
(``customer``, ``status``), expire.  The session's ``url`` points at this server, whose page
takes a card number: a working test card creates a payment method (attached to the
customer), a succeeded setup intent (``setup_intent.created|succeeded``), completes the
session (``checkout.session.completed``) and redirects to ``success_url`` with
``{CHECKOUT_SESSION_ID}`` replaced; a declining card (4000 0000 0000 0002) shows Stripe's
"Your card was declined." and leaves the session open.  Sessions expire at ``expires_at``
(default 24 hours, ``checkout.session.expired``).

Simplified: ``payment`` and ``subscription`` modes are rejected with a 400 that says so; the
``payment_method_types`` parameter of older API versions does not exist in the SDK's API
version (it is ``allowed_payment_method_types`` there), so it is rejected as unknown.
"""

from __future__ import annotations

from typing import Any

from ..errors import StripeError, invalid
from ..objects import paginate
from ..routing import Context, route
from ..state import State
from . import payment_methods, setup_intents

EXPIRY = 24 * 3600


def new_session(state: State, params: dict[str, Any]) -> dict[str, Any]:
    mode = params.get("mode")
    if mode is None:
        raise StripeError(
            400, "Missing required param: mode.", code="parameter_missing", param="mode"
        )
    if mode != "setup":
        raise invalid(f"This test server models only mode=setup sessions, not {mode}.", "mode")
    if not params.get("success_url"):
        raise StripeError(
            400,
            "Missing required param: success_url.",
            code="parameter_missing",
            param="success_url",
        )
    allowed = params.get("allowed_payment_method_types")
    if not params.get("currency") and not allowed:
        raise invalid(
            "currency is required in setup mode when allowed_payment_method_types is not set.",
            "currency",
        )
    if params.get("customer"):
        state.require("customer", params["customer"], param="customer", status=400)
    now = state.now()
    session_id = state.new_id("cs_test_", 58)
    session = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": None,
        "allowed_payment_method_types": allowed,
        "amount_subtotal": None,
        "amount_total": None,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": params.get("billing_address_collection"),
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": params.get("currency"),
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": params.get("customer"),
        "customer_account": None,
        "customer_creation": None,
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "excluded_payment_method_types": params.get("excluded_payment_method_types"),
        "expires_at": params.get("expires_at") or now + EXPIRY,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": dict(params.get("metadata") or {}),
        "mode": "setup",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "no_payment_required",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "presentment_details": None,
        "recovered_from": None,
        "redirect_on_completion": None,
        "return_url": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params["success_url"],
        "total_details": None,
        "ui_mode": "hosted_page",
        "url": f"{state.base_url}/c/pay/{session_id}",
        "wallet_options": None,
        "_setup_intent_metadata": dict(
            (params.get("setup_intent_data") or {}).get("metadata") or {}
        ),
    }
    state.insert("checkout.session", session)
    return session


def complete_setup(
    state: State, session: dict[str, Any], card_number: str, *, name: str = "", email: str = ""
) -> str:
    """Run the hosted page's submit; returns the success redirect URL or raises a card error."""
    if session["status"] != "open":
        raise invalid("This Checkout Session is no longer active.")
    pm = payment_methods.new_card(
        state, card_number, billing_details={"name": name or None, "email": email or None}
    )
    payment_methods.check_setup(pm)
    customer = state.get("customer", session["customer"])
    if customer:
        payment_methods.attach(state, pm["id"], customer)
    intent = setup_intents.new_setup_intent(
        state,
        customer=session["customer"],
        payment_method=pm["id"],
        status="requires_confirmation",
        metadata=session["_setup_intent_metadata"],
    )
    intent["status"] = "succeeded"
    state.emit("setup_intent.succeeded", intent)
    session.update(status="complete", setup_intent=intent["id"], url=None)
    session["customer_details"] = {
        "address": None,
        "business_name": None,
        "email": email or (customer or {}).get("email") or session["customer_email"],
        "individual_name": None,
        "name": name or (customer or {}).get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    state.emit("checkout.session.completed", session)
    return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])


def expire(state: State, session: dict[str, Any]) -> None:
    session.update(status="expired", url=None)
    state.emit("checkout.session.expired", session)


def expire_due(state: State) -> None:
    for session in state.table("checkout.session").values():
        if session["status"] == "open" and session["expires_at"] <= state.now():
            expire(state, session)


@route("POST", "/v1/checkout/sessions", "checkout.SessionCreateParams")
def create(ctx: Context) -> dict[str, Any]:
    return new_session(ctx.state, ctx.params)


@route("GET", "/v1/checkout/sessions/{session}", "checkout.SessionRetrieveParams")
def retrieve(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("checkout.session", ctx.args["session"])


@route("POST", "/v1/checkout/sessions/{session}/expire", "checkout.SessionExpireParams")
def expire_endpoint(ctx: Context) -> dict[str, Any]:
    session = ctx.state.require("checkout.session", ctx.args["session"])
    if session["status"] != "open":
        raise invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{session["status"]}".'
        )
    expire(ctx.state, session)
    return session


@route("GET", "/v1/checkout/sessions", "checkout.SessionListParams")
def list_sessions(ctx: Context) -> dict[str, Any]:
    items = ctx.state.all("checkout.session")
    for key in ("customer", "status", "setup_intent"):
        if key in ctx.params:
            items = [s for s in items if s[key] == ctx.params[key]]
    return paginate(ctx.state, items, ctx.params, "/v1/checkout/sessions")
