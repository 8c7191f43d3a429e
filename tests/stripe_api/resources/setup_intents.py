"""Setup intents: create (optionally ``confirm=true``), confirm, retrieve, list.

A setup intent succeeds (``setup_intent.succeeded``) and attaches its card to the customer
unless the card declines on setup (4000 0000 0000 0002 -> 402 ``card_declined``).  Checkout
in setup mode creates its setup intents through :func:`new_setup_intent`.  Simplified: no
``next_action``/3-D Secure, no mandates, cards only.
"""

from __future__ import annotations

from typing import Any

from ..errors import invalid
from ..objects import paginate
from ..routing import Context, route
from ..state import State
from .payment_methods import attach, check_setup, resolve


def new_setup_intent(
    state: State,
    *,
    customer: str | None,
    payment_method: str | None = None,
    status: str = "requires_payment_method",
    metadata: dict[str, str] | None = None,
    usage: str = "off_session",
) -> dict[str, Any]:
    setup_intent_id = state.new_id("seti_")
    intent = {
        "id": setup_intent_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{setup_intent_id}_secret_{state.token(24)}",
        "created": state.now(),
        "customer": customer,
        "customer_account": None,
        "description": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": dict(metadata or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": status,
        "usage": usage,
    }
    state.insert("setup_intent", intent)
    state.emit("setup_intent.created", intent)
    return intent


def confirm_setup_intent(state: State, intent: dict[str, Any], pm_token: str | None) -> None:
    if pm_token:
        intent["payment_method"] = resolve(state, pm_token, "payment_method")["id"]
    if not intent["payment_method"]:
        raise invalid(
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            "payment_method",
        )
    pm = state.require("payment_method", intent["payment_method"])
    check_setup(pm)
    if intent["customer"]:
        customer = state.require("customer", intent["customer"])
        attach(state, pm["id"], customer)
    intent["status"] = "succeeded"
    state.emit("setup_intent.succeeded", intent)


@route("POST", "/v1/setup_intents", "SetupIntentCreateParams")
def create_setup_intent(ctx: Context) -> dict[str, Any]:
    if ctx.params.get("customer"):
        ctx.state.require("customer", ctx.params["customer"], param="customer", status=400)
    intent = new_setup_intent(
        ctx.state,
        customer=ctx.params.get("customer"),
        metadata=ctx.params.get("metadata"),
        usage=ctx.params.get("usage", "off_session"),
    )
    if ctx.params.get("payment_method"):
        pm = resolve(ctx.state, ctx.params["payment_method"], "payment_method")
        intent["payment_method"] = pm["id"]
        intent["status"] = "requires_confirmation"
    if ctx.params.get("confirm"):
        confirm_setup_intent(ctx.state, intent, None)
    return intent


@route("POST", "/v1/setup_intents/{intent}/confirm", "SetupIntentConfirmParams")
def confirm(ctx: Context) -> dict[str, Any]:
    intent = ctx.state.require("setup_intent", ctx.args["intent"])
    confirm_setup_intent(ctx.state, intent, ctx.params.get("payment_method"))
    return intent


@route("GET", "/v1/setup_intents/{intent}", "SetupIntentRetrieveParams")
def retrieve_setup_intent(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("setup_intent", ctx.args["intent"])


@route("GET", "/v1/setup_intents", "SetupIntentListParams")
def list_setup_intents(ctx: Context) -> dict[str, Any]:
    items = ctx.state.all("setup_intent")
    for key in ("customer", "payment_method"):
        if key in ctx.params:
            items = [i for i in items if i[key] == ctx.params[key]]
    return paginate(ctx.state, items, ctx.params, "/v1/setup_intents")
