"""Subscription lifecycle: creation, renewal, trials, cancellation and clock-driven changes.

Modelled Stripe behaviour:

* Creation opens the first period (``current_period_start/end`` live on the items, as in
  current API versions) anchored at ``billing_cycle_anchor`` (default now), invoices it
  (``billing_reason=subscription_create``) and charges the default payment method.  Paid ->
  ``active``; declined or no card -> ``incomplete`` with an open invoice (``allow_incomplete``)
  or a 402 and nothing created (``error_if_incomplete``); ``default_incomplete`` leaves the
  invoice open without charging.  Trials (``trial_period_days``, ``trial_end``,
  ``trial_from_plan``) start ``trialing`` with a paid zero-amount invoice.
* :func:`process_due` runs on every request and when tests advance the clock: at each period
  end it ends trials (``trial_settings.end_behavior.missing_payment_method``), applies
  subscription schedule phases, cancels subscriptions whose ``cancel_at`` passed (status
  ``canceled``, ``ended_at``, ``customer.subscription.deleted``), or renews: new period,
  ``subscription_cycle`` invoice with pending prorations, charge; ``pause_collection``
  keeps the invoice as draft / voids it / marks it uncollectible.  ``incomplete``
  subscriptions expire after 23 hours (``incomplete_expired``).
* :func:`cancel_now` ends a subscription at once, optionally crediting unused time
  (``prorate``) and invoicing pending items (``invoice_now``).
"""

from __future__ import annotations

from typing import Any

from . import changes, invoicing, periods
from . import lines as line_items
from .errors import StripeError, invalid
from .objects import hydrator, list_object, previous_attributes
from .state import State

INCOMPLETE_TTL = 23 * 3600


@hydrator("subscription_item")
def _hydrate_item(state: State, item: dict[str, Any]) -> None:
    price = state.get("price", item["price"]) if isinstance(item["price"], str) else None
    if price is None:
        return
    item["price"] = price
    item["plan"] = {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"] if price["recurring"] else None,
        "interval_count": price["recurring"]["interval_count"] if price["recurring"] else None,
        "livemode": False,
        "metadata": price["metadata"],
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


@hydrator("subscription")
def _hydrate_subscription(state: State, subscription: dict[str, Any]) -> None:
    subscription["items"]["total_count"] = len(subscription["items"]["data"])


def new_subscription(
    state: State, customer: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    from .resources import discounts, payment_methods

    now = state.now()
    sub_id = state.new_id("sub_")
    subscription: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {
            "flexible": {"proration_discounts": "included"},
            "type": "flexible",
            "updated_at": now,
        },
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": params.get("collection_method", "charge_automatically"),
        "created": now,
        "currency": "usd",
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": params.get("days_until_due"),
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": list_object(f"/v1/subscription_items?subscription={sub_id}", []),
        "latest_invoice": None,
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "incomplete",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
    end_behavior = ((params.get("trial_settings") or {}).get("end_behavior") or {}).get(
        "missing_payment_method"
    )
    if end_behavior:
        subscription["trial_settings"]["end_behavior"]["missing_payment_method"] = end_behavior
    if not params.get("items"):
        raise StripeError(
            400, "Missing required param: items.", code="parameter_missing", param="items"
        )
    changes.apply_items(state, subscription, params["items"])
    price = state.require("price", subscription["items"]["data"][0]["price"])
    subscription["currency"] = price["currency"]
    interval, count = changes.interval_of(state, subscription)
    if params.get("default_payment_method"):
        payment_methods.require_attached(
            state, params["default_payment_method"], customer["id"], "default_payment_method"
        )
        subscription["default_payment_method"] = params["default_payment_method"]
    trial_end = _trial_end(state, params, price)
    if trial_end:
        subscription.update(status="trialing", trial_start=now, trial_end=trial_end)
        anchor, end = trial_end, trial_end
    else:
        anchor = params.get("billing_cycle_anchor") or now
        end = periods.next_boundary(anchor, now, interval, count)
    subscription["billing_cycle_anchor"] = anchor
    changes.set_period(subscription, now, end)
    state.insert("subscription", subscription)
    if params.get("discounts"):
        subscription["discounts"] = discounts.redeem(
            state,
            params["discounts"],
            customer=customer["id"],
            subscription=sub_id,
            param="discounts",
        )
    if params.get("cancel_at_period_end"):
        request_cancel(state, subscription, at=end, details=params.get("cancellation_details"))
    state.emit("customer.subscription.created", subscription)
    invoice = _first_invoice(state, subscription, customer, trial=bool(trial_end))
    changes.settle(state, subscription, invoice, params.get("payment_behavior", "allow_incomplete"))
    if subscription["collection_method"] == "send_invoice" and subscription["status"] != "trialing":
        _set_status(state, subscription, "active")
    return subscription


def _trial_end(state: State, params: dict[str, Any], price: dict[str, Any]) -> int | None:
    now = state.now()
    trial_end = params.get("trial_end")
    if trial_end == "now":
        return None
    if isinstance(trial_end, int):
        if trial_end <= now:
            raise invalid(
                "Invalid timestamp: must be an integer Unix timestamp in the future.", "trial_end"
            )
        return trial_end
    days = params.get("trial_period_days")
    if days is None and params.get("trial_from_plan"):
        days = (price.get("recurring") or {}).get("trial_period_days")
    return now + days * 86400 if days else None


def _first_invoice(
    state: State, subscription: dict[str, Any], customer: dict[str, Any], *, trial: bool
) -> dict[str, Any]:
    lines = changes.period_lines(state, subscription)
    if trial:
        for line in lines:
            line["amount"] = line["subtotal"] = 0
            line["description"] = "Trial period for " + line["description"].split(" (at ")[0]
    start, end = changes.period(subscription)
    interval, count = changes.interval_of(state, subscription)
    if not trial and end < periods.add_interval(start, interval, count):
        full_start = periods.add_interval(end, interval, -count)
        for line in lines:  # a billing_cycle_anchor in the future prorates the first period
            line["amount"] = line["subtotal"] = periods.prorate(
                line["amount"], full_start, end, start
            )
    return invoicing.build_invoice(
        state,
        customer,
        lines=lines,
        billing_reason="subscription_create",
        subscription=subscription,
    )


def _set_status(state: State, subscription: dict[str, Any], status: str, **fields: Any) -> None:
    before = dict(subscription)
    subscription["status"] = status
    subscription.update(fields)
    state.emit(
        "customer.subscription.updated",
        subscription,
        previous_attributes(state, before, subscription),
    )


def request_cancel(
    state: State,
    subscription: dict[str, Any],
    *,
    at: int | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Set (``at``) or clear (``None``) a scheduled cancellation."""
    _, end = changes.period(subscription)
    details = details or {}
    if at is None:
        subscription.update(cancel_at=None, cancel_at_period_end=False, canceled_at=None)
        subscription["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        return
    subscription.update(cancel_at=at, cancel_at_period_end=at == end, canceled_at=state.now())
    subscription["cancellation_details"] = {
        "comment": details.get("comment") or None,
        "feedback": details.get("feedback") or None,
        "reason": "cancellation_requested",
    }


def cancel_now(
    state: State,
    subscription: dict[str, Any],
    *,
    reason: str = "cancellation_requested",
    details: dict[str, Any] | None = None,
    prorate: bool = False,
    invoice_now: bool = False,
    ended_at: int | None = None,
) -> None:
    now = state.now()
    start, end = changes.period(subscription)
    if prorate and subscription["status"] in ("active", "past_due") and now < end:
        credits = [
            changes.ItemChange(item, (item["price"], item["quantity"]), None)
            for item in subscription["items"]["data"]
        ]
        for change in credits:
            changes._proration_item(state, subscription, change, change.old, start, end, now, -1)
    if invoice_now:
        customer = state.require("customer", subscription["customer"])
        pending = line_items.pending_items(state, customer["id"], subscription["id"])
        if pending:
            invoice = invoicing.build_invoice(
                state,
                customer,
                lines=[],
                invoice_items=pending,
                billing_reason="subscription",
                subscription=subscription,
            )
            subscription["latest_invoice"] = invoice["id"]
            invoicing.finalize(state, invoice)
            if invoice["status"] == "open":
                invoicing.collect(state, invoice)
    details = details or {}
    cancellation = subscription["cancellation_details"]
    cancellation["reason"] = reason
    for key in ("comment", "feedback"):
        if details.get(key):
            cancellation[key] = details[key]
    subscription.update(
        status="canceled",
        canceled_at=subscription["canceled_at"] or now,
        ended_at=ended_at or now,
        cancel_at_period_end=False,
    )
    if ended_at is None:
        subscription.update(canceled_at=now, cancel_at=None)
    schedule = state.get("subscription_schedule", subscription["schedule"])
    if schedule and schedule["status"] in ("active", "not_started"):
        schedule.update(status="canceled", canceled_at=now)
        state.emit("subscription_schedule.canceled", schedule)
    state.emit("customer.subscription.deleted", subscription)


def process_due(state: State) -> None:
    """Apply everything the clock made due (renewals, trial ends, scheduled cancellations)."""
    for subscription in sorted(state.table("subscription").values(), key=state.sort_key):
        for _ in range(1000):  # bounded: one iteration per elapsed billing period
            if not _advance_once(state, subscription):
                break


def _advance_once(state: State, subscription: dict[str, Any]) -> bool:
    from .resources import schedules

    now = state.now()
    status = subscription["status"]
    if status in ("canceled", "incomplete_expired", "paused"):
        return False
    if status == "incomplete":
        if subscription["created"] + INCOMPLETE_TTL <= now:
            invoice = state.get("invoice", subscription["latest_invoice"])
            if invoice and invoice["status"] == "open":
                invoicing.void(state, invoice)
            _set_status(state, subscription, "incomplete_expired", ended_at=now)
        return False
    pause = subscription["pause_collection"]
    if pause and pause.get("resumes_at") and pause["resumes_at"] <= now:
        _set_status(state, subscription, status, pause_collection=None)
    cancel_at = subscription["cancel_at"]
    _start, end = changes.period(subscription)
    if cancel_at is not None and cancel_at <= now and cancel_at <= end:
        cancel_now(state, subscription, ended_at=cancel_at, invoice_now=True)
        return False
    if end > now:
        return False
    if subscription["schedule"]:
        schedules.on_period_end(state, subscription, end)
        if subscription["status"] == "canceled":
            return False
    _renew(state, subscription, end)
    return True


def _renew(state: State, subscription: dict[str, Any], boundary: int) -> None:
    customer = state.require("customer", subscription["customer"])
    old_start, _ = changes.period(subscription)
    interval, count = changes.interval_of(state, subscription)
    new_end = periods.next_boundary(subscription["billing_cycle_anchor"], boundary, interval, count)
    before = dict(subscription)
    ending_trial = subscription["status"] == "trialing"
    changes.set_period(subscription, boundary, new_end)
    if ending_trial:
        has_card = (
            subscription["default_payment_method"]
            or (customer["invoice_settings"]["default_payment_method"])
        )
        behavior = subscription["trial_settings"]["end_behavior"]["missing_payment_method"]
        if not has_card and behavior == "pause":
            _set_status(state, subscription, "paused")
            state.emit("customer.subscription.paused", subscription)
            return
        if not has_card and behavior == "cancel":
            cancel_now(state, subscription, reason="cancellation_requested", ended_at=boundary)
            return
        subscription["status"] = "active"
    pending = line_items.pending_items(state, customer["id"], subscription["id"])
    invoice = invoicing.build_invoice(
        state,
        customer,
        lines=changes.period_lines(state, subscription),
        invoice_items=pending,
        billing_reason="subscription_cycle",
        subscription=subscription,
        period=(old_start, boundary),
    )
    subscription["latest_invoice"] = invoice["id"]
    state.emit(
        "customer.subscription.updated",
        subscription,
        previous_attributes(state, before, subscription),
    )
    pause = subscription["pause_collection"]
    if pause and pause["behavior"] == "keep_as_draft":
        return
    invoicing.finalize(state, invoice)
    if pause and pause["behavior"] == "void" and invoice["status"] == "open":
        invoicing.void(state, invoice)
    elif pause and invoice["status"] == "open":
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = state.now()
        state.emit("invoice.marked_uncollectible", invoice)
    elif invoice["status"] == "open" and subscription["collection_method"] != "send_invoice":
        invoicing.collect(state, invoice)
