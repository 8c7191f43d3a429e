"""Subscription schedules: enough for "switch plans at the end of the period".

Modelled: create ``from_subscription`` (one phase mirroring the subscription's current items
and period, ``end_behavior=release``) or for a customer with ``phases`` starting ``now``
(creates the subscription); retrieve; list (``customer``); update ``phases`` (phase 0 keeps
its ``start_date``; each phase ends at ``end_date``, after ``duration``, or - for the last
phase - after one billing interval), ``end_behavior``, ``metadata``; release (the
subscription continues unmanaged); cancel (cancels the subscription, ``invoice_now`` and
``prorate`` default to true).  When a subscription period ends the next phase's items
replace the subscription's items without proration before the renewal invoice; after the
last phase ``release`` releases the schedule and ``cancel`` cancels the subscription.
Changing the *current* phase's items applies them now with the phase's
``proration_behavior``.  Events: ``subscription_schedule.created|updated|released|canceled``.

Simplified: no ``not_started`` schedules in the future, phase-level discounts, trials,
``add_invoice_items`` or default settings are accepted but not applied.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import changes, lifecycle, periods
from ..errors import invalid
from ..objects import match_range, paginate, previous_attributes, update_metadata
from ..routing import Context, route
from ..state import State


def _phase(
    state: State, spec: dict[str, Any], start: int, last: bool, index: int
) -> dict[str, Any]:
    items = []
    for position, item in enumerate(spec.get("items") or []):
        where = f"phases[{index}][items][{position}]"
        price = changes.resolve_price(state, item, where)
        items.append(
            {
                "billing_thresholds": None,
                "discounts": [],
                "metadata": dict(item.get("metadata") or {}),
                "plan": price["id"],
                "price": price["id"],
                "quantity": item.get("quantity", 1),
                "tax_rates": [],
            }
        )
    if not items:
        raise invalid("Each phase needs at least one item.", f"phases[{index}][items]")
    price = state.require("price", items[0]["price"])
    end = spec.get("end_date")
    if end == "now":
        end = state.now()
    if end is None and spec.get("duration"):
        duration = spec["duration"]
        end = periods.add_interval(start, duration["interval"], duration.get("interval_count", 1))
    if end is None:
        if not last:
            raise invalid(f"Phase {index} must have an end_date or duration.", f"phases[{index}]")
        end = periods.add_interval(
            start, price["recurring"]["interval"], price["recurring"]["interval_count"]
        )
    if end <= start:
        raise invalid("A phase must end after it starts.", f"phases[{index}][end_date]")
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": price["currency"],
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": end,
        "invoice_settings": None,
        "items": items,
        "metadata": dict(spec.get("metadata") or {}),
        "on_behalf_of": None,
        "proration_behavior": spec.get("proration_behavior", "create_prorations"),
        "start_date": start,
        "transfer_data": None,
        "trial_end": None,
    }


def _phases(state: State, specs: list[dict[str, Any]], first_start: int) -> list[dict[str, Any]]:
    phases, start = [], first_start
    for index, spec in enumerate(specs):
        phase = _phase(state, spec, start, index == len(specs) - 1, index)
        phases.append(phase)
        start = phase["end_date"]
    return phases


def _new_schedule(state: State, customer: str, subscription: str | None) -> dict[str, Any]:
    now = state.now()
    return {
        "id": state.new_id("sub_sched_"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "flexible", "updated_at": now},
        "canceled_at": None,
        "completed_at": None,
        "created": now,
        "current_phase": None,
        "customer": customer,
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {
                "account_tax_ids": None,
                "days_until_due": None,
                "issuer": {"type": "self"},
            },
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": "release",
        "livemode": False,
        "metadata": {},
        "pause_schedules": [],
        "phases": [],
        "released_at": None,
        "released_subscription": None,
        "status": "active",
        "subscription": subscription,
        "test_clock": None,
    }


def _set_current(schedule: dict[str, Any], at: int) -> dict[str, Any] | None:
    for phase in schedule["phases"]:
        if phase["start_date"] <= at < phase["end_date"]:
            schedule["current_phase"] = {
                "end_date": phase["end_date"],
                "start_date": phase["start_date"],
            }
            return phase
    schedule["current_phase"] = None
    return None


def _item_specs(subscription: dict[str, Any], phase: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = {item["price"]: item["quantity"] for item in phase["items"]}
    specs: list[dict[str, Any]] = []
    for item in subscription["items"]["data"]:
        if item["price"] in wanted:
            specs.append({"id": item["id"], "quantity": wanted.pop(item["price"])})
        else:
            specs.append({"id": item["id"], "deleted": True})
    specs.extend({"price": price, "quantity": qty} for price, qty in wanted.items())
    return specs


@route("POST", "/v1/subscription_schedules", "SubscriptionScheduleCreateParams")
def create(ctx: Context) -> dict[str, Any]:
    state, params = ctx.state, ctx.params
    if params.get("from_subscription"):
        if params.get("phases"):
            raise invalid("You cannot set `phases` if `from_subscription` is set.", "phases")
        subscription = state.require(
            "subscription", params["from_subscription"], param="from_subscription", status=400
        )
        if subscription["schedule"]:
            raise invalid(
                "The subscription is already attached to a schedule.", "from_subscription"
            )
        start, end = changes.period(subscription)
        schedule = _new_schedule(state, subscription["customer"], subscription["id"])
        schedule["phases"] = [
            _phase(
                state,
                {
                    "items": [
                        {"price": i["price"], "quantity": i["quantity"]}
                        for i in subscription["items"]["data"]
                    ],
                    "end_date": end,
                },
                start,
                True,
                0,
            )
        ]
        subscription["schedule"] = schedule["id"]
    else:
        customer = state.require("customer", params.get("customer"), param="customer", status=400)
        if params.get("start_date", "now") != "now" or not params.get("phases"):
            raise invalid(
                "This test server models schedules that start now with phases.", "start_date"
            )
        schedule = _new_schedule(state, customer["id"], None)
        schedule["phases"] = _phases(state, params["phases"], state.now())
        first = schedule["phases"][0]
        subscription = lifecycle.new_subscription(
            state,
            customer,
            {"items": [{"price": i["price"], "quantity": i["quantity"]} for i in first["items"]]},
        )
        subscription["schedule"] = schedule["id"]
        schedule["subscription"] = subscription["id"]
    schedule["end_behavior"] = params.get("end_behavior", "release")
    schedule["metadata"] = dict(params.get("metadata") or {})
    _set_current(schedule, state.now())
    state.insert("subscription_schedule", schedule)
    state.emit("subscription_schedule.created", schedule)
    return schedule


@route("GET", "/v1/subscription_schedules/{schedule}", "SubscriptionScheduleRetrieveParams")
def retrieve(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("subscription_schedule", ctx.args["schedule"])


@route("GET", "/v1/subscription_schedules", "SubscriptionScheduleListParams")
def list_schedules(ctx: Context) -> dict[str, Any]:
    items = ctx.state.all("subscription_schedule")
    if "customer" in ctx.params:
        items = [s for s in items if s["customer"] == ctx.params["customer"]]
    items = [s for s in items if match_range(s["created"], ctx.params.get("created"))]
    return paginate(ctx.state, items, ctx.params, "/v1/subscription_schedules")


def _active(ctx: Context) -> dict[str, Any]:
    schedule = ctx.state.require("subscription_schedule", ctx.args["schedule"])
    if schedule["status"] not in ("active", "not_started"):
        raise invalid(f"You cannot update a subscription schedule that is {schedule['status']}.")
    return schedule


@route("POST", "/v1/subscription_schedules/{schedule}", "SubscriptionScheduleUpdateParams")
def update(ctx: Context) -> dict[str, Any]:
    state, params = ctx.state, ctx.params
    schedule = _active(ctx)
    before = copy.deepcopy(schedule)
    if "phases" in params:
        current = schedule["current_phase"] or {"start_date": state.now()}
        first = params["phases"][0] if params["phases"] else {}
        start = first.get("start_date", current["start_date"])
        if start == "now":
            start = state.now()
        if start != current["start_date"]:
            raise invalid(
                "You can not modify the start date of the current phase.", "phases[0][start_date]"
            )
        schedule["phases"] = _phases(state, params["phases"], current["start_date"])
        phase = _set_current(schedule, state.now())
        subscription = state.get("subscription", schedule["subscription"])
        if phase and subscription:
            behavior = params.get("proration_behavior", phase["proration_behavior"])
            result = changes.change_items(
                state,
                subscription,
                _item_specs(subscription, phase),
                proration_behavior=behavior,
                proration_date=None,
                param="phases[0][items]",
            )
            if result.reset_anchor or (behavior == "always_invoice" and result.changes):
                invoice = changes.update_invoice(state, subscription, result)
                if invoice is not None:
                    changes.settle(state, subscription, invoice, "allow_incomplete")
    if "end_behavior" in params:
        schedule["end_behavior"] = params["end_behavior"]
    if "metadata" in params:
        schedule["metadata"] = update_metadata(schedule["metadata"], params["metadata"])
    state.emit(
        "subscription_schedule.updated", schedule, previous_attributes(state, before, schedule)
    )
    return schedule


def release(state: State, schedule: dict[str, Any]) -> None:
    subscription = state.get("subscription", schedule["subscription"])
    schedule.update(
        status="released",
        released_at=state.now(),
        released_subscription=schedule["subscription"],
        subscription=None,
        current_phase=None,
    )
    if subscription:
        before = dict(subscription)
        subscription["schedule"] = None
        state.emit(
            "customer.subscription.updated",
            subscription,
            previous_attributes(state, before, subscription),
        )
    state.emit("subscription_schedule.released", schedule)


@route("POST", "/v1/subscription_schedules/{schedule}/release", "SubscriptionScheduleReleaseParams")
def release_endpoint(ctx: Context) -> dict[str, Any]:
    schedule = _active(ctx)
    release(ctx.state, schedule)
    return schedule


@route("POST", "/v1/subscription_schedules/{schedule}/cancel", "SubscriptionScheduleCancelParams")
def cancel(ctx: Context) -> dict[str, Any]:
    schedule = _active(ctx)
    subscription = ctx.state.get("subscription", schedule["subscription"])
    if subscription and subscription["status"] not in ("canceled", "incomplete_expired"):
        lifecycle.cancel_now(
            ctx.state,
            subscription,
            prorate=ctx.params.get("prorate", True),
            invoice_now=ctx.params.get("invoice_now", True),
        )
    if schedule["status"] != "canceled":
        schedule.update(status="canceled", canceled_at=ctx.state.now(), current_phase=None)
        ctx.state.emit("subscription_schedule.canceled", schedule)
    return schedule


def on_period_end(state: State, subscription: dict[str, Any], boundary: int) -> None:
    """Move the subscription into the phase that starts at ``boundary`` (or end the schedule)."""
    schedule = state.get("subscription_schedule", subscription["schedule"])
    if not schedule or schedule["status"] != "active":
        return
    phase = _set_current(schedule, boundary)
    if phase is None:
        if schedule["end_behavior"] == "cancel":
            schedule.update(status="completed", completed_at=boundary)
            lifecycle.cancel_now(state, subscription, ended_at=boundary)
            state.emit("subscription_schedule.completed", schedule)
        else:
            release(state, schedule)
        return
    changes.apply_items(state, subscription, _item_specs(subscription, phase))
    state.emit("subscription_schedule.updated", schedule)
