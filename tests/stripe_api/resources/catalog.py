"""Products and prices.

Modelled: products create (custom ``id``, ``default_price_data``), retrieve, update (``name``,
``active``, ``default_price`` must belong to the product, ...), delete (refused while the
product has prices), list (``active``, ``ids``, ``created``); prices create (``product`` or
``product_data``, ``unit_amount``/``unit_amount_decimal``, ``recurring``, unique
``lookup_key`` with ``transfer_lookup_key``), retrieve, update (``active``, ``nickname``,
``metadata``, ``lookup_key``), list (``active``, ``product``, ``type``, ``currency``,
``lookup_keys``, ``recurring[interval]``, ``created``).  ``product.*`` and ``price.*`` events.

Simplified: only ``billing_scheme=per_unit`` prices; tiers, currency options and custom
unit amounts are rejected or ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..errors import StripeError, invalid, missing_param
from ..objects import deleted, match_range, paginate, previous_attributes, update_metadata
from ..routing import Context, route
from ..state import State

PRODUCT_FIELDS = ("name", "description", "statement_descriptor", "unit_label", "url", "tax_code")


def new_product(state: State, params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    if not params.get("name"):
        raise missing_param(f"{prefix}[name]" if prefix else "name")
    product_id = params.get("id") or state.new_id("prod_", 14)
    if state.get("product", product_id):
        raise StripeError(
            400, "Product already exists.", code="resource_already_exists", param="id"
        )
    now = state.now()
    product = {
        "id": product_id,
        "object": "product",
        "active": params.get("active", True),
        "created": now,
        "default_price": None,
        "description": None,
        "images": list(params.get("images", [])),
        "livemode": False,
        "marketing_features": [
            {"name": f.get("name")} for f in params.get("marketing_features", [])
        ],
        "metadata": dict(params.get("metadata") or {}),
        "name": params["name"],
        "package_dimensions": None,
        "shippable": params.get("shippable"),
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    for key in PRODUCT_FIELDS:
        if params.get(key):
            product[key] = params[key]
    state.insert("product", product)
    state.emit("product.created", product)
    if params.get("default_price_data"):
        price = new_price(state, dict(params["default_price_data"], product=product_id))
        before = dict(product)
        product["default_price"] = price["id"]
        state.emit("product.updated", product, previous_attributes(state, before, product))
    return product


def new_price(state: State, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("billing_scheme", "per_unit") != "per_unit":
        raise invalid("Only per_unit prices are modelled by this test server.", "billing_scheme")
    if "currency" not in params:
        raise StripeError(
            400, "Missing required param: currency.", code="parameter_missing", param="currency"
        )
    if params.get("product_data"):
        product_id = new_product(state, params["product_data"], "product_data")["id"]
    elif params.get("product"):
        product_id = state.require("product", params["product"], param="product", status=400)["id"]
    else:
        raise StripeError(
            400, "Missing required param: product.", code="parameter_missing", param="product"
        )
    if "unit_amount_decimal" in params:
        decimal = Decimal(params["unit_amount_decimal"])
    elif "unit_amount" in params:
        decimal = Decimal(params["unit_amount"])
    else:
        raise StripeError(
            400,
            "Missing required param: unit_amount.",
            code="parameter_missing",
            param="unit_amount",
        )
    lookup_key = params.get("lookup_key")
    if lookup_key:
        _claim_lookup_key(state, lookup_key, params.get("transfer_lookup_key", False))
    recurring = params.get("recurring")
    price = {
        "id": state.new_id("price_"),
        "object": "price",
        "active": params.get("active", True),
        "billing_scheme": "per_unit",
        "created": state.now(),
        "currency": params["currency"].lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": dict(params.get("metadata") or {}),
        "nickname": params.get("nickname"),
        "product": product_id,
        "recurring": None,
        "tax_behavior": params.get("tax_behavior", "unspecified"),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": int(decimal) if decimal == decimal.to_integral_value() else None,
        "unit_amount_decimal": format(decimal.normalize(), "f"),
    }
    if recurring:
        price["recurring"] = {
            "interval": recurring["interval"],
            "interval_count": recurring.get("interval_count", 1),
            "meter": recurring.get("meter"),
            "trial_period_days": recurring.get("trial_period_days"),
            "usage_type": recurring.get("usage_type", "licensed"),
        }
    state.insert("price", price)
    state.emit("price.created", price)
    return price


def _claim_lookup_key(state: State, lookup_key: str, transfer: bool) -> None:
    for other in state.table("price").values():
        if other["lookup_key"] == lookup_key:
            if not transfer:
                raise invalid(
                    f"A price (`{other['id']}`) already uses that lookup key.", "lookup_key"
                )
            before = dict(other)
            other["lookup_key"] = None
            state.emit("price.updated", other, previous_attributes(state, before, other))


@route("POST", "/v1/products", "ProductCreateParams")
def create_product(ctx: Context) -> dict[str, Any]:
    return new_product(ctx.state, ctx.params)


@route("GET", "/v1/products/{id}", "ProductRetrieveParams")
def retrieve_product(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("product", ctx.args["id"])


@route("POST", "/v1/products/{id}", "ProductUpdateParams")
def update_product(ctx: Context) -> dict[str, Any]:
    state, params = ctx.state, ctx.params
    product = state.require("product", ctx.args["id"])
    before = dict(product)
    for key in (*PRODUCT_FIELDS, "active", "images", "shippable"):
        if key in params:
            product[key] = params[key] if params[key] != "" else None
    if "metadata" in params:
        product["metadata"] = update_metadata(product["metadata"], params["metadata"])
    if "marketing_features" in params:
        product["marketing_features"] = [
            {"name": f.get("name")} for f in params["marketing_features"] or []
        ]
    if "default_price" in params:
        price = state.require("price", params["default_price"], param="default_price", status=400)
        if price["product"] != product["id"]:
            raise invalid("The price must belong to this product.", "default_price")
        product["default_price"] = price["id"]
    product["updated"] = state.now()
    state.emit("product.updated", product, previous_attributes(state, before, product))
    return product


@route("DELETE", "/v1/products/{id}", "ProductDeleteParams")
def delete_product(ctx: Context) -> dict[str, Any]:
    product = ctx.state.require("product", ctx.args["id"])
    if any(p["product"] == product["id"] for p in ctx.state.table("price").values()):
        raise invalid(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    ctx.state.remove("product", product["id"])
    ctx.state.emit("product.deleted", product)
    return deleted(product)


@route("GET", "/v1/products", "ProductListParams")
def list_products(ctx: Context) -> dict[str, Any]:
    items = ctx.state.all("product")
    if "active" in ctx.params:
        items = [p for p in items if p["active"] == ctx.params["active"]]
    if "ids" in ctx.params:
        items = [p for p in items if p["id"] in ctx.params["ids"]]
    items = [p for p in items if match_range(p["created"], ctx.params.get("created"))]
    return paginate(ctx.state, items, ctx.params, "/v1/products")


@route("POST", "/v1/prices", "PriceCreateParams")
def create_price(ctx: Context) -> dict[str, Any]:
    return new_price(ctx.state, ctx.params)


@route("GET", "/v1/prices/{price}", "PriceRetrieveParams")
def retrieve_price(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("price", ctx.args["price"])


@route("POST", "/v1/prices/{price}", "PriceUpdateParams")
def update_price(ctx: Context) -> dict[str, Any]:
    state, params = ctx.state, ctx.params
    price = state.require("price", ctx.args["price"])
    before = dict(price)
    if params.get("lookup_key"):
        _claim_lookup_key(state, params["lookup_key"], params.get("transfer_lookup_key", False))
    for key in ("active", "nickname", "lookup_key", "tax_behavior"):
        if key in params:
            price[key] = params[key] if params[key] != "" else None
    if "metadata" in params:
        price["metadata"] = update_metadata(price["metadata"], params["metadata"])
    state.emit("price.updated", price, previous_attributes(state, before, price))
    return price


@route("GET", "/v1/prices", "PriceListParams")
def list_prices(ctx: Context) -> dict[str, Any]:
    params = ctx.params
    items = ctx.state.all("price")
    for key in ("active", "product", "type", "currency"):
        if key in params:
            items = [p for p in items if p[key] == params[key]]
    if "lookup_keys" in params:
        items = [p for p in items if p["lookup_key"] in params["lookup_keys"]]
    interval = (params.get("recurring") or {}).get("interval")
    if interval:
        items = [p for p in items if p["recurring"] and p["recurring"]["interval"] == interval]
    items = [p for p in items if match_range(p["created"], params.get("created"))]
    return paginate(ctx.state, items, params, "/v1/prices")
