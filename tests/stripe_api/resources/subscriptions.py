"""Subscription endpoints: create, retrieve, update, cancel, resume, list.

Semantics live in :mod:`..lifecycle` (creation, renewal, cancellation) and :mod:`..changes`
(item changes, prorations, payment behaviour).  Update supports ``items[]``
(``id``/``price``/``quantity``/``deleted``), ``proration_behavior``, ``proration_date``,
``cancel_at_period_end`` (status stays ``active`` until the period ends; ``canceled_at`` is
the request time, ``cancellation_details.reason=cancellation_requested``), ``cancel_at``
(timestamp, ``min_period_end``/``max_period_end``, ``""`` clears), ``cancellation_details``,
``pause_collection`` (``""`` clears), ``default_payment_method`` (must be attached),
``discounts`` (replaces; ``""`` clears), ``trial_end`` (``now`` ends the trial and invoices
a fresh period; a timestamp moves the trial end), ``billing_cycle_anchor=now``,
``payment_behavior``, ``metadata``, ``description``, ``collection_method``.  Canceled
subscriptions only accept ``metadata`` and ``cancellation_details``, as on Stripe.
"""

from __future__ import annotations

from typing import Any

from .. import changes, lifecycle, periods
from ..errors import invalid
from ..objects import match_range, paginate, previous_attributes, update_metadata
from ..routing import Context, route
from ..state import State
from . import discounts, payment_methods

PATH = "/v1/subscriptions/{subscription_exposed_id}"


def _subscription(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("subscription", ctx.args["subscription_exposed_id"])


@route("POST", "/v1/subscriptions", "SubscriptionCreateParams")
def create(ctx: Context) -> dict[str, Any]:
    if "customer" not in ctx.params:
        raise invalid("Missing required param: customer.", "customer", "parameter_missing")
    customer = ctx.state.require("customer", ctx.params["customer"], param="customer", status=400)
    return lifecycle.new_subscription(ctx.state, customer, ctx.params)


@route("GET", PATH, "SubscriptionRetrieveParams")
def retrieve(ctx: Context) -> dict[str, Any]:
    return _subscription(ctx)


@route("POST", PATH, "SubscriptionUpdateParams")
def update(ctx: Context) -> dict[str, Any]:
    subscription = _subscription(ctx)
    update_subscription(ctx.state, subscription, ctx.params)
    return subscription


def update_subscription(state: State, subscription: dict[str, Any], params: dict[str, Any]) -> None:
    before = _copy(subscription)
    if subscription["status"] in ("canceled", "incomplete_expired"):
        extra = set(params) - {"metadata", "cancellation_details", "expand"}
        if extra:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
                sorted(extra)[0],
            )
    _simple_fields(state, subscription, params)
    _cancellation(state, subscription, params)
    payment_behavior = params.get("payment_behavior", "allow_incomplete")
    proration_behavior = params.get("proration_behavior", "create_prorations")
    invoice_reason = None
    result = changes.ChangeResult()
    if params.get("items"):
        result = changes.change_items(
            state,
            subscription,
            params["items"],
            proration_behavior=proration_behavior,
            proration_date=params.get("proration_date"),
        )
        if result.reset_anchor or (proration_behavior == "always_invoice" and result.changes):
            invoice_reason = "subscription_update"
    if "trial_end" in params and _trial_end(state, subscription, params["trial_end"]):
        result.reset_anchor = True
        invoice_reason = "subscription_update"
    if params.get("billing_cycle_anchor") == "now" and not result.reset_anchor:
        _reset_anchor(state, subscription, proration_behavior)
        result.reset_anchor = True
        invoice_reason = "subscription_update"
    if invoice_reason:
        invoice = changes.update_invoice(state, subscription, result)
        if invoice is not None:
            changes.settle(state, subscription, invoice, payment_behavior)
    changed = previous_attributes(state, before, subscription)
    if changed:
        state.emit("customer.subscription.updated", subscription, changed)


def _copy(subscription: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(subscription)


def _simple_fields(state: State, subscription: dict[str, Any], params: dict[str, Any]) -> None:
    if "default_payment_method" in params:
        pm_id = params["default_payment_method"] or None
        if pm_id:
            payment_methods.require_attached(
                state, pm_id, subscription["customer"], "default_payment_method"
            )
        subscription["default_payment_method"] = pm_id
    if "metadata" in params:
        subscription["metadata"] = update_metadata(subscription["metadata"], params["metadata"])
    for key in ("description", "collection_method", "days_until_due"):
        if key in params:
            subscription[key] = params[key] if params[key] != "" else None
    if "discounts" in params:
        specs = params["discounts"]
        subscription["discounts"] = (
            discounts.redeem(
                state,
                specs,
                customer=subscription["customer"],
                subscription=subscription["id"],
                param="discounts",
            )
            if specs
            else []
        )
    if "pause_collection" in params:
        pause = params["pause_collection"]
        subscription["pause_collection"] = (
            {"behavior": pause["behavior"], "resumes_at": pause.get("resumes_at")}
            if pause
            else None
        )


def _cancellation(state: State, subscription: dict[str, Any], params: dict[str, Any]) -> None:
    _, end = changes.period(subscription)
    details = params.get("cancellation_details")
    if params.get("cancel_at_period_end") is True:
        lifecycle.request_cancel(state, subscription, at=end, details=details)
    elif params.get("cancel_at_period_end") is False:
        lifecycle.request_cancel(state, subscription, at=None)
    if "cancel_at" in params:
        value = params["cancel_at"]
        if value == "":
            lifecycle.request_cancel(state, subscription, at=None)
        else:
            at = value if isinstance(value, int) else end
            if at <= state.now():
                raise invalid("cancel_at must be in the future.", "cancel_at")
            lifecycle.request_cancel(state, subscription, at=at, details=details)
    elif details and "cancel_at_period_end" not in params:
        current = subscription["cancellation_details"]
        for key in ("comment", "feedback"):
            if key in details:
                current[key] = details[key] or None


def _trial_end(state: State, subscription: dict[str, Any], value: Any) -> bool:
    """Move or end the trial; returns True when a new paid period starts now."""
    now = state.now()
    if value == "now":
        if subscription["status"] != "trialing":
            return False
        interval, count = changes.interval_of(state, subscription)
        changes.set_period(subscription, now, periods.add_interval(now, interval, count))
        subscription.update(status="active", trial_end=now, billing_cycle_anchor=now)
        return True
    if value <= now:
        raise invalid(
            "Invalid timestamp: must be an integer Unix timestamp in the future.", "trial_end"
        )
    start, _ = changes.period(subscription)
    changes.set_period(subscription, start, value)
    subscription.update(
        status="trialing",
        trial_end=value,
        billing_cycle_anchor=value,
        trial_start=subscription["trial_start"] or now,
    )
    return False


def _reset_anchor(state: State, subscription: dict[str, Any], proration_behavior: str) -> None:
    now = state.now()
    start, end = changes.period(subscription)
    if proration_behavior != "none" and subscription["status"] != "trialing":
        for item in subscription["items"]["data"]:
            change = changes.ItemChange(item, (item["price"], item["quantity"]), None)
            changes._proration_item(state, subscription, change, change.old, start, end, now, -1)
    interval, count = changes.interval_of(state, subscription)
    changes.set_period(subscription, now, periods.add_interval(now, interval, count))
    subscription["billing_cycle_anchor"] = now


@route("DELETE", PATH, "SubscriptionCancelParams")
def cancel(ctx: Context) -> dict[str, Any]:
    subscription = _subscription(ctx)
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise invalid(f"This subscription ({subscription['id']}) has already been canceled.")
    lifecycle.cancel_now(
        ctx.state,
        subscription,
        details=ctx.params.get("cancellation_details"),
        prorate=ctx.params.get("prorate", False),
        invoice_now=ctx.params.get("invoice_now", False),
    )
    return subscription


@route("DELETE", PATH + "/discount", "SubscriptionDeleteDiscountParams")
def delete_discount(ctx: Context) -> dict[str, Any]:
    subscription = _subscription(ctx)
    if not subscription["discounts"]:
        raise invalid("This subscription has no discount.")
    removed = subscription["discounts"][0]
    before = _copy(subscription)
    subscription["discounts"] = []
    ctx.state.emit(
        "customer.subscription.updated",
        subscription,
        previous_attributes(ctx.state, before, subscription),
    )
    discount = ctx.state.require("discount", removed)
    return {**discount, "deleted": True}


@route("POST", "/v1/subscriptions/{subscription}/resume", "SubscriptionResumeParams")
def resume(ctx: Context) -> dict[str, Any]:
    state = ctx.state
    subscription = state.require("subscription", ctx.args["subscription"])
    if subscription["status"] != "paused":
        raise invalid("Only a paused subscription can be resumed.")
    before = _copy(subscription)
    anchor = (ctx.params.get("billing_cycle_anchor") or "now") == "now"
    now = state.now()
    interval, count = changes.interval_of(state, subscription)
    end = (
        periods.add_interval(now, interval, count)
        if anchor
        else periods.next_boundary(subscription["billing_cycle_anchor"], now, interval, count)
    )
    changes.set_period(subscription, now, end)
    subscription["status"] = "active"
    if anchor:
        subscription["billing_cycle_anchor"] = now
    invoice = changes.update_invoice(state, subscription, changes.ChangeResult(reset_anchor=True))
    if invoice is not None:
        changes.settle(state, subscription, invoice, "allow_incomplete")
    state.emit(
        "customer.subscription.resumed",
        subscription,
        previous_attributes(state, before, subscription),
    )
    return subscription


@route("GET", "/v1/subscriptions", "SubscriptionListParams")
def list_subscriptions(ctx: Context) -> dict[str, Any]:
    params = ctx.params
    items = ctx.state.all("subscription")
    status = params.get("status")
    if status is None:
        items = [s for s in items if s["status"] != "canceled"]
    elif status == "ended":
        items = [s for s in items if s["status"] in ("canceled", "incomplete_expired")]
    elif status != "all":
        items = [s for s in items if s["status"] == status]
    if "customer" in params:
        items = [s for s in items if s["customer"] == params["customer"]]
    price = params.get("price") or params.get("plan")
    if price:
        items = [s for s in items if any(i["price"] == price for i in s["items"]["data"])]
    items = [s for s in items if match_range(s["created"], params.get("created"))]
    return paginate(ctx.state, items, params, "/v1/subscriptions")
