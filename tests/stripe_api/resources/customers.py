"""Customers and their tax ids.

Modelled: create/retrieve/update/delete/list (``email`` and ``created`` filters) and a small
``search`` (``email:'..'``, ``name:'..'``, ``metadata['k']:'v'`` joined with ``AND``);
update semantics for ``address``/``shipping`` (replaced, ``""`` clears), ``metadata`` (merge,
``""`` unsets), ``invoice_settings[default_payment_method]`` (must be attached to the
customer); ``customer.created|updated|deleted`` events.  Deleting a customer cancels its
subscriptions.  Tax ids (``/v1/customers/{id}/tax_ids``) are created, listed, retrieved and
deleted with ``customer.tax_id.*`` events; ``eu_vat`` values are format-checked and test
values containing ``000000000`` verify, ``111111111`` do not, others stay ``pending``.

Simplified: ``tax``, ``cash_balance``, ``source`` and similar accepted parameters are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from .. import lifecycle
from ..errors import StripeError, invalid, no_such
from ..objects import (
    address,
    deleted,
    match_range,
    paginate,
    previous_attributes,
    shipping,
    update_metadata,
)
from ..routing import Context, route
from ..state import State
from . import payment_methods

SIMPLE_FIELDS = ("name", "email", "phone", "description", "business_name", "individual_name")


def new_customer(state: State, params: dict[str, Any]) -> dict[str, Any]:
    customer: dict[str, Any] = {
        "id": state.new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": state.now(),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "individual_name": None,
        "invoice_prefix": state.token(8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    state.insert("customer", customer)
    if params.get("payment_method"):
        payment_methods.attach(state, params["payment_method"], customer, "payment_method")
    apply_update(state, customer, params)
    for index, data in enumerate(params.get("tax_id_data", [])):
        create_tax_id(state, customer, data, f"tax_id_data[{index}]")
    state.emit("customer.created", customer)
    return customer


def apply_update(state: State, customer: dict[str, Any], params: dict[str, Any]) -> None:
    for key in SIMPLE_FIELDS:
        if key in params:
            customer[key] = params[key] or None
    for key in ("balance", "invoice_prefix", "next_invoice_sequence", "preferred_locales"):
        if key in params:
            customer[key] = params[key]
    if "tax_exempt" in params:
        customer["tax_exempt"] = params["tax_exempt"] or "none"
    if "address" in params:
        customer["address"] = address(params["address"] or None)
    if "shipping" in params:
        customer["shipping"] = shipping(params["shipping"] or None)
    if "metadata" in params:
        customer["metadata"] = update_metadata(customer["metadata"], params["metadata"])
    settings = params.get("invoice_settings") or {}
    current = customer["invoice_settings"]
    if "default_payment_method" in settings:
        pm_id = settings["default_payment_method"] or None
        if pm_id is not None:
            payment_methods.require_attached(
                state, pm_id, customer["id"], "invoice_settings[default_payment_method]"
            )
        current["default_payment_method"] = pm_id
    if "footer" in settings:
        current["footer"] = settings["footer"] or None
    if "custom_fields" in settings:
        current["custom_fields"] = settings["custom_fields"] or None


@route("POST", "/v1/customers", "CustomerCreateParams")
def create(ctx: Context) -> dict[str, Any]:
    return new_customer(ctx.state, ctx.params)


@route("GET", "/v1/customers/{customer}", "CustomerRetrieveParams")
def retrieve(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("customer", ctx.args["customer"])


@route("POST", "/v1/customers/{customer}", "CustomerUpdateParams")
def update(ctx: Context) -> dict[str, Any]:
    customer = ctx.state.require("customer", ctx.args["customer"])
    update_customer(ctx.state, customer, ctx.params)
    return customer


def update_customer(state: State, customer: dict[str, Any], params: dict[str, Any]) -> None:
    before = dict(customer, invoice_settings=dict(customer["invoice_settings"]))
    apply_update(state, customer, params)
    changes = previous_attributes(state, before, customer)
    if changes:
        state.emit("customer.updated", customer, changes)


@route("DELETE", "/v1/customers/{customer}", "CustomerDeleteParams")
def delete(ctx: Context) -> dict[str, Any]:
    state = ctx.state
    customer = state.require("customer", ctx.args["customer"])
    for subscription in state.all("subscription"):
        if subscription["customer"] == customer["id"] and subscription["status"] != "canceled":
            lifecycle.cancel_now(state, subscription, reason="cancellation_requested")
    state.remove("customer", customer["id"])
    state.emit("customer.deleted", customer)
    return deleted(customer)


@route("GET", "/v1/customers", "CustomerListParams")
def list_customers(ctx: Context) -> dict[str, Any]:
    items = ctx.state.all("customer")
    if "email" in ctx.params:
        items = [c for c in items if c["email"] == ctx.params["email"]]
    items = [c for c in items if match_range(c["created"], ctx.params.get("created"))]
    return paginate(ctx.state, items, ctx.params, "/v1/customers")


_CLAUSE = re.compile(r"""^\s*(\w+)(?:\[['"]([^'"]+)['"]\])?\s*:\s*['"]([^'"]*)['"]\s*$""")


@route("GET", "/v1/customers/search", "CustomerSearchParams")
def search(ctx: Context) -> dict[str, Any]:
    """Exact-match subset of Stripe's search query language."""
    clauses = []
    for part in re.split(r"\s+AND\s+", ctx.params["query"]):
        found = _CLAUSE.match(part)
        if not found:
            raise invalid(f"Unsupported search query: {part!r}", "query")
        clauses.append(found.groups())

    def matches(customer: dict[str, Any]) -> bool:
        for field, key, value in clauses:
            actual = customer.get("metadata", {}).get(key) if key else customer.get(field)
            if actual != value:
                return False
        return True

    data = [c for c in ctx.state.all("customer") if matches(c)]
    limit = ctx.params.get("limit", 10)
    return {
        "object": "search_result",
        "data": data[:limit],
        "has_more": len(data) > limit,
        "next_page": None,
        "url": "/v1/customers/search",
    }


# -- tax ids ------------------------------------------------------------------------------
_EU_VAT = re.compile(r"^[A-Z]{2}[0-9A-Z]{2,13}$")


def create_tax_id(
    state: State, customer: dict[str, Any], params: dict[str, Any], param: str = "value"
) -> dict[str, Any]:
    tax_type, value = params["type"], params["value"].strip()
    if not value or (tax_type == "eu_vat" and not _EU_VAT.match(value.replace(" ", ""))):
        raise StripeError(400, f"Invalid value for {tax_type}.", code="tax_id_invalid", param=param)
    country = value[:2].upper() if tax_type == "eu_vat" else tax_type[:2].upper()
    status = "unavailable"
    if tax_type in ("eu_vat", "gb_vat", "au_abn"):
        status = "pending"
        if "000000000" in value:
            status = "verified"
        elif "111111111" in value:
            status = "unverified"
    tax_id = {
        "id": state.new_id("txi_"),
        "object": "tax_id",
        "country": "GR" if country == "EL" else country,
        "created": state.now(),
        "customer": customer["id"],
        "customer_account": None,
        "livemode": False,
        "owner": {
            "account": None,
            "application": None,
            "customer": customer["id"],
            "customer_account": None,
            "type": "customer",
        },
        "type": tax_type,
        "value": value,
        "verification": {
            "status": status,
            "verified_address": None,
            "verified_name": "Test Business" if status == "verified" else None,
        },
    }
    state.insert("tax_id", tax_id)
    state.emit("customer.tax_id.created", tax_id)
    return tax_id


def _customer_tax_id(ctx: Context) -> dict[str, Any]:
    customer = ctx.state.require("customer", ctx.args["customer"], param="customer")
    tax_id = ctx.state.get("tax_id", ctx.args["id"])
    if tax_id is None or tax_id["customer"] != customer["id"]:
        raise no_such("tax_id", ctx.args["id"])
    return tax_id


@route("POST", "/v1/customers/{customer}/tax_ids", "CustomerTaxIdCreateParams")
def create_customer_tax_id(ctx: Context) -> dict[str, Any]:
    customer = ctx.state.require("customer", ctx.args["customer"], param="customer")
    return create_tax_id(ctx.state, customer, ctx.params)


@route("GET", "/v1/customers/{customer}/tax_ids", "CustomerTaxIdListParams")
def list_tax_ids(ctx: Context) -> dict[str, Any]:
    customer = ctx.state.require("customer", ctx.args["customer"], param="customer")
    items = [t for t in ctx.state.all("tax_id") if t["customer"] == customer["id"]]
    return paginate(ctx.state, items, ctx.params, f"/v1/customers/{customer['id']}/tax_ids")


@route("GET", "/v1/customers/{customer}/tax_ids/{id}", "CustomerTaxIdRetrieveParams")
def retrieve_tax_id(ctx: Context) -> dict[str, Any]:
    return _customer_tax_id(ctx)


@route("DELETE", "/v1/customers/{customer}/tax_ids/{id}", "CustomerTaxIdDeleteParams")
def delete_tax_id(ctx: Context) -> dict[str, Any]:
    tax_id = _customer_tax_id(ctx)
    ctx.state.remove("tax_id", tax_id["id"])
    ctx.state.emit("customer.tax_id.deleted", tax_id)
    return deleted(tax_id)
