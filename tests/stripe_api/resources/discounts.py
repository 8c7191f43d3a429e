"""Coupons, promotion codes and the discounts they create.

Modelled: coupons create (custom ``id``; ``percent_off`` or ``amount_off`` + ``currency``;
``duration`` once/repeating/forever; ``max_redemptions``, ``redeem_by``), retrieve, update
(``name``, ``metadata``), delete, list; promotion codes create (``promotion[coupon]``, unique
active ``code``, ``expires_at``, ``max_redemptions``, ``customer`` restriction), retrieve,
update (``active``, ``metadata``), list (``code``, ``active``, ``coupon``, ``customer``).
Redeeming (``discounts[][coupon|promotion_code|discount]`` on subscriptions and previews)
creates ``discount`` objects (``di_...``) and counts redemptions.

Discount arithmetic (see :func:`discount_amounts`): each discount applies to the invoice's
discountable subtotal left after the previous ones; ``percent_off`` rounds half up to the
cent, ``amount_off`` is capped at that subtotal and needs the same currency.  ``once``
discounts are consumed by the first invoice, ``repeating`` ones end after
``duration_in_months``.  Simplified: ``applies_to`` product restrictions are ignored and
discounts are reported on the invoice total only (line ``discount_amounts`` stay empty).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..errors import StripeError, invalid
from ..objects import deleted, match_range, paginate, previous_attributes, update_metadata
from ..periods import add_months
from ..routing import Context, route
from ..state import State


def new_coupon(state: State, params: dict[str, Any]) -> dict[str, Any]:
    percent_off, amount_off = params.get("percent_off"), params.get("amount_off")
    if (percent_off is None) == (amount_off is None):
        raise invalid("You must pass exactly one of percent_off or amount_off.", "percent_off")
    if amount_off is not None and not params.get("currency"):
        raise invalid("You must pass currency when passing amount_off.", "currency")
    duration = params.get("duration", "once")
    if duration == "repeating" and not params.get("duration_in_months"):
        raise invalid(
            "You must pass duration_in_months when duration is repeating.", "duration_in_months"
        )
    coupon_id = params.get("id") or state.token(8).upper()
    if state.get("coupon", coupon_id):
        raise StripeError(400, "Coupon already exists.", code="resource_already_exists", param="id")
    coupon = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount_off,
        "applies_to": None,
        "created": state.now(),
        "currency": params["currency"].lower() if params.get("currency") else None,
        "duration": duration,
        "duration_in_months": params.get("duration_in_months"),
        "livemode": False,
        "max_redemptions": params.get("max_redemptions"),
        "metadata": dict(params.get("metadata") or {}),
        "name": params.get("name"),
        "percent_off": float(percent_off) if percent_off is not None else None,
        "redeem_by": params.get("redeem_by"),
        "times_redeemed": 0,
        "valid": True,
    }
    if params.get("applies_to"):
        coupon["applies_to"] = {"products": list(params["applies_to"].get("products", []))}
    state.insert("coupon", coupon)
    state.emit("coupon.created", coupon)
    return coupon


def new_promotion_code(state: State, params: dict[str, Any]) -> dict[str, Any]:
    promotion = params["promotion"]
    coupon = state.require("coupon", promotion.get("coupon"), param="promotion[coupon]", status=400)
    code = params.get("code") or state.token(8).upper()
    for other in state.table("promotion_code").values():
        if other["active"] and other["code"].lower() == code.lower():
            raise invalid(f"An active promotion code with `code: {code}` already exists.", "code")
    restrictions = params.get("restrictions") or {}
    promo = {
        "id": state.new_id("promo_"),
        "object": "promotion_code",
        "active": params.get("active", True),
        "code": code,
        "created": state.now(),
        "customer": params.get("customer"),
        "customer_account": None,
        "expires_at": params.get("expires_at"),
        "livemode": False,
        "max_redemptions": params.get("max_redemptions"),
        "metadata": dict(params.get("metadata") or {}),
        "promotion": {"coupon": coupon["id"], "type": "coupon"},
        "restrictions": {
            "currency_options": {},
            "first_time_transaction": restrictions.get("first_time_transaction", False),
            "minimum_amount": restrictions.get("minimum_amount"),
            "minimum_amount_currency": restrictions.get("minimum_amount_currency"),
        },
        "times_redeemed": 0,
    }
    state.insert("promotion_code", promo)
    state.emit("promotion_code.created", promo)
    return promo


def _check_coupon(state: State, coupon: dict[str, Any], param: str) -> None:
    now = state.now()
    expired = coupon["redeem_by"] is not None and coupon["redeem_by"] < now
    exhausted = (
        coupon["max_redemptions"] is not None
        and coupon["times_redeemed"] >= coupon["max_redemptions"]
    )
    if expired or exhausted or not coupon["valid"]:
        raise StripeError(
            400, f"Coupon expired: {coupon['id']}", code="coupon_expired", param=param
        )


def redeem(
    state: State,
    specs: list[dict[str, Any]],
    *,
    customer: str,
    subscription: str | None,
    param: str,
) -> list[str]:
    """Turn ``discounts[]`` parameters into discount ids (new or existing)."""
    ids: list[str] = []
    for index, spec in enumerate(specs):
        where = f"{param}[{index}]"
        if spec.get("discount"):
            state.require("discount", spec["discount"], param=f"{where}[discount]", status=400)
            ids.append(spec["discount"])
            continue
        promo = None
        if spec.get("promotion_code"):
            promo = state.require(
                "promotion_code",
                spec["promotion_code"],
                param=f"{where}[promotion_code]",
                status=400,
            )
            _check_promotion_code(state, promo, customer, f"{where}[promotion_code]")
            coupon = state.require("coupon", promo["promotion"]["coupon"])
        elif spec.get("coupon"):
            coupon = state.require("coupon", spec["coupon"], param=f"{where}[coupon]", status=400)
        else:
            raise invalid(f"You must specify a coupon or promotion_code in {where}.", where)
        _check_coupon(state, coupon, where)
        ids.append(_new_discount(state, coupon, promo, customer, subscription)["id"])
    return ids


def _check_promotion_code(state: State, promo: dict[str, Any], customer: str, param: str) -> None:
    expired = promo["expires_at"] is not None and promo["expires_at"] < state.now()
    exhausted = (
        promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]
    )
    if not promo["active"] or expired or exhausted:
        raise invalid(f"This promotion code cannot be redeemed: {promo['code']}", param)
    if promo["customer"] and promo["customer"] != customer:
        raise invalid("This promotion code cannot be redeemed by this customer.", param)


def _new_discount(
    state: State,
    coupon: dict[str, Any],
    promo: dict[str, Any] | None,
    customer: str,
    subscription: str | None,
) -> dict[str, Any]:
    start = state.now()
    end = None
    if coupon["duration"] == "repeating":
        end = add_months(start, coupon["duration_in_months"])
    discount = {
        "id": state.new_id("di_"),
        "object": "discount",
        "checkout_session": None,
        "customer": customer,
        "customer_account": None,
        "end": end,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": promo["id"] if promo else None,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": start,
        "subscription": subscription,
        "subscription_item": None,
    }
    coupon["times_redeemed"] += 1
    if promo:
        promo["times_redeemed"] += 1
    return state.insert("discount", discount)


def discount_amounts(
    state: State, discount_ids: list[str], base: int, currency: str
) -> list[tuple[str, int]]:
    """``[(discount_id, amount)]`` for an invoice whose discountable subtotal is ``base``."""
    out: list[tuple[str, int]] = []
    remaining = max(base, 0)
    for discount_id in discount_ids:
        discount = state.get("discount", discount_id)
        if discount is None or (discount["end"] is not None and discount["end"] <= state.now()):
            continue
        coupon = state.get("coupon", discount["source"]["coupon"])
        if coupon is None:
            continue
        if coupon["percent_off"] is not None:
            amount = int(
                (Decimal(remaining) * Decimal(str(coupon["percent_off"])) / 100).quantize(
                    Decimal(1), ROUND_HALF_UP
                )
            )
        elif coupon["currency"] == currency:
            amount = min(coupon["amount_off"], remaining)
        else:
            amount = 0
        remaining -= amount
        out.append((discount_id, amount))
    return out


@route("POST", "/v1/coupons", "CouponCreateParams")
def create_coupon(ctx: Context) -> dict[str, Any]:
    return new_coupon(ctx.state, ctx.params)


@route("GET", "/v1/coupons/{coupon}", "CouponRetrieveParams")
def retrieve_coupon(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("coupon", ctx.args["coupon"])


@route("POST", "/v1/coupons/{coupon}", "CouponUpdateParams")
def update_coupon(ctx: Context) -> dict[str, Any]:
    coupon = ctx.state.require("coupon", ctx.args["coupon"])
    before = dict(coupon)
    if "name" in ctx.params:
        coupon["name"] = ctx.params["name"] or None
    if "metadata" in ctx.params:
        coupon["metadata"] = update_metadata(coupon["metadata"], ctx.params["metadata"])
    ctx.state.emit("coupon.updated", coupon, previous_attributes(ctx.state, before, coupon))
    return coupon


@route("DELETE", "/v1/coupons/{coupon}", "CouponDeleteParams")
def delete_coupon(ctx: Context) -> dict[str, Any]:
    coupon = ctx.state.require("coupon", ctx.args["coupon"])
    coupon["valid"] = False
    ctx.state.remove("coupon", coupon["id"])
    ctx.state.emit("coupon.deleted", coupon)
    return deleted(coupon)


@route("GET", "/v1/coupons", "CouponListParams")
def list_coupons(ctx: Context) -> dict[str, Any]:
    items = [
        c for c in ctx.state.all("coupon") if match_range(c["created"], ctx.params.get("created"))
    ]
    return paginate(ctx.state, items, ctx.params, "/v1/coupons")


@route("POST", "/v1/promotion_codes", "PromotionCodeCreateParams")
def create_promotion_code(ctx: Context) -> dict[str, Any]:
    return new_promotion_code(ctx.state, ctx.params)


@route("GET", "/v1/promotion_codes/{promotion_code}", "PromotionCodeRetrieveParams")
def retrieve_promotion_code(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("promotion_code", ctx.args["promotion_code"])


@route("POST", "/v1/promotion_codes/{promotion_code}", "PromotionCodeUpdateParams")
def update_promotion_code(ctx: Context) -> dict[str, Any]:
    promo = ctx.state.require("promotion_code", ctx.args["promotion_code"])
    before = dict(promo)
    if "active" in ctx.params:
        promo["active"] = ctx.params["active"]
    if "metadata" in ctx.params:
        promo["metadata"] = update_metadata(promo["metadata"], ctx.params["metadata"])
    ctx.state.emit("promotion_code.updated", promo, previous_attributes(ctx.state, before, promo))
    return promo


@route("GET", "/v1/promotion_codes", "PromotionCodeListParams")
def list_promotion_codes(ctx: Context) -> dict[str, Any]:
    params = ctx.params
    items = ctx.state.all("promotion_code")
    if "code" in params:
        items = [p for p in items if p["code"].lower() == params["code"].lower()]
    for key in ("active", "customer"):
        if key in params:
            items = [p for p in items if p[key] == params[key]]
    if "coupon" in params:
        items = [p for p in items if p["promotion"]["coupon"] == params["coupon"]]
    items = [p for p in items if match_range(p["created"], params.get("created"))]
    return paginate(ctx.state, items, params, "/v1/promotion_codes")
