"""Subscription item changes, prorations and the invoices they produce.

Modelled Stripe behaviour (flexible billing mode):

* ``items[]`` entries with an ``id`` change that item's price/quantity or delete it
  (``deleted=true``); entries without ``id`` add an item.  Prices must be recurring and
  active; one price may appear only once; all items share currency and interval.
* A change mid-period creates proration invoice items: a credit
  ``-old_amount * (period_end - t) / (period_end - period_start)`` ("Unused time on ...") and a
  charge ``new_amount * (period_end - t) / (period_end - period_start)`` ("Remaining time on
  ..."), each rounded to the cent, where ``t`` is ``proration_date`` or now.  Quantity
  changes credit the old quantity and charge the new one.  ``proration_behavior=none``
  creates none; ``always_invoice`` invoices them at once, ``create_prorations`` leaves them
  pending for the next invoice.
* Trials are not prorated.  Changing the billing interval (monthly -> yearly) resets the
  billing cycle anchor to now and invoices the full new period at once (plus credits).
* :func:`settle` finalises an invoice and collects it according to ``payment_behavior``:
  ``allow_incomplete`` (default) keeps the change and leaves the invoice open on decline,
  ``error_if_incomplete`` rolls the whole request back with the 402, ``default_incomplete``
  does not attempt payment.  Simplified: ``pending_if_incomplete`` behaves like
  ``error_if_incomplete`` (no ``pending_update`` object).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import invoicing, periods
from . import lines as line_items
from .errors import StripeError, invalid, missing_param, no_such
from .objects import update_metadata
from .state import State


@dataclass
class ItemChange:
    item: dict[str, Any]
    old: tuple[str, int] | None  # (price id, quantity) before
    new: tuple[str, int] | None  # (price id, quantity) after


@dataclass
class ChangeResult:
    changes: list[ItemChange] = field(default_factory=list)
    reset_anchor: bool = False
    proration_date: int = 0


def period(subscription: dict[str, Any]) -> tuple[int, int]:
    first = subscription["items"]["data"][0]
    return first["current_period_start"], first["current_period_end"]


def set_period(subscription: dict[str, Any], start: int, end: int) -> None:
    for item in subscription["items"]["data"]:
        item["current_period_start"], item["current_period_end"] = start, end


def interval_of(state: State, subscription: dict[str, Any]) -> tuple[str, int]:
    price = state.require("price", subscription["items"]["data"][0]["price"])
    return price["recurring"]["interval"], price["recurring"]["interval_count"]


def resolve_price(state: State, spec: dict[str, Any], where: str) -> dict[str, Any]:
    from .resources import catalog

    if spec.get("price") or spec.get("plan"):
        key = "price" if spec.get("price") else "plan"
        price = state.require("price", spec[key], param=f"{where}[{key}]", status=400)
    elif spec.get("price_data"):
        data = dict(spec["price_data"])
        price = catalog.new_price(state, data)
    else:
        raise missing_param(f"{where}[price]")
    if not price["recurring"]:
        raise invalid(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            f"{where}[price]",
        )
    if not price["active"]:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.",
            f"{where}[price]",
        )
    return price


def new_item(
    state: State,
    subscription_id: str,
    price: dict[str, Any],
    spec: dict[str, Any],
    start: int,
    end: int,
) -> dict[str, Any]:
    return {
        "id": state.new_id("si_", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": state.now(),
        "current_period_end": end,
        "current_period_start": start,
        "discounts": [],
        "metadata": dict(spec.get("metadata") or {}),
        "price": price["id"],
        "quantity": spec.get("quantity", 1),
        "subscription": subscription_id,
        "tax_rates": [],
    }


def apply_items(
    state: State, subscription: dict[str, Any], specs: list[dict[str, Any]], param: str = "items"
) -> list[ItemChange]:
    items: list[dict[str, Any]] = subscription["items"]["data"]
    start, end = period(subscription) if items else (state.now(), state.now())
    changes: list[ItemChange] = []
    for index, spec in enumerate(specs):
        where = f"{param}[{index}]"
        if spec.get("id"):
            item = next((i for i in items if i["id"] == spec["id"]), None)
            if item is None:
                raise no_such("subscription item", spec["id"], f"{where}[id]", 400)
            old = (item["price"], item["quantity"])
            if spec.get("deleted"):
                items.remove(item)
                changes.append(ItemChange(item, old, None))
                continue
            if spec.get("price") or spec.get("plan") or spec.get("price_data"):
                item["price"] = resolve_price(state, spec, where)["id"]
            if "quantity" in spec:
                item["quantity"] = spec["quantity"]
            if "metadata" in spec:
                item["metadata"] = update_metadata(item["metadata"], spec["metadata"])
            new = (item["price"], item["quantity"])
            if new != old:
                changes.append(ItemChange(item, old, new))
            continue
        price = resolve_price(state, spec, where)
        if any(i["price"] == price["id"] for i in items):
            raise invalid(
                f"Cannot add multiple subscription items with the same price: {price['id']}",
                f"{where}[price]",
            )
        item = new_item(state, subscription["id"], price, spec, start, end)
        items.append(item)
        changes.append(ItemChange(item, None, (item["price"], item["quantity"])))
    if not items:
        raise invalid("A subscription must have at least one active price.", param)
    prices = [state.require("price", i["price"]) for i in items]
    if len({p["currency"] for p in prices}) > 1:
        raise invalid("All prices on a subscription must have the same currency.", param)
    if len({(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p in prices}) > 1:
        raise invalid("All prices on a subscription must have the same recurring interval.", param)
    return changes


def change_items(
    state: State,
    subscription: dict[str, Any],
    specs: list[dict[str, Any]],
    *,
    proration_behavior: str,
    proration_date: int | None,
    param: str = "items",
) -> ChangeResult:
    old_interval = interval_of(state, subscription)
    start, end = period(subscription)
    at = min(max(proration_date or state.now(), start), end)
    changes = apply_items(state, subscription, specs, param)
    result = ChangeResult(changes, False, at)
    if not changes or subscription["status"] == "trialing":
        return result
    new_interval = interval_of(state, subscription)
    result.reset_anchor = new_interval != old_interval
    if proration_behavior != "none":
        for change in changes:
            if change.old:
                _proration_item(state, subscription, change, change.old, start, end, at, -1)
            if change.new and not result.reset_anchor:
                _proration_item(state, subscription, change, change.new, start, end, at, 1)
    if result.reset_anchor:
        now = state.now()
        set_period(subscription, now, periods.add_interval(now, *new_interval))
        subscription["billing_cycle_anchor"] = now
    return result


def _proration_item(
    state: State,
    subscription: dict[str, Any],
    change: ItemChange,
    price_quantity: tuple[str, int],
    start: int,
    end: int,
    at: int,
    sign: int,
) -> None:
    price = state.require("price", price_quantity[0])
    quantity = price_quantity[1]
    amount = periods.prorate(sign * price["unit_amount"] * quantity, start, end, at)
    if at >= end:
        return
    line_items.new_invoice_item(
        state,
        customer=subscription["customer"],
        price=price,
        quantity=quantity,
        amount=amount,
        description=line_items.proration_description(state, price, quantity, at, credit=sign < 0),
        start=at,
        end=end,
        subscription=subscription["id"],
        subscription_item=change.item["id"],
        proration=True,
    )


def period_lines(state: State, subscription: dict[str, Any]) -> list[dict[str, Any]]:
    start, end = period(subscription)
    return [
        line_items.subscription_line(state, subscription, item, start, end)
        for item in subscription["items"]["data"]
    ]


def update_invoice(
    state: State,
    subscription: dict[str, Any],
    result: ChangeResult,
    *,
    preview: bool = False,
    billing_reason: str = "subscription_update",
) -> dict[str, Any] | None:
    """The invoice an update produces now (anchor reset and/or pending prorations)."""
    customer = state.require("customer", subscription["customer"])
    lines = period_lines(state, subscription) if result.reset_anchor else []
    pending = line_items.pending_items(state, customer["id"], subscription["id"])
    if not lines and not pending:
        return None
    return invoicing.build_invoice(
        state,
        customer,
        lines=lines,
        invoice_items=pending,
        billing_reason=billing_reason,
        subscription=subscription,
        preview=preview,
    )


def settle(
    state: State, subscription: dict[str, Any], invoice: dict[str, Any], payment_behavior: str
) -> None:
    """Finalise ``invoice`` and collect it as ``payment_behavior`` asks."""
    subscription["latest_invoice"] = invoice["id"]
    invoicing.finalize(state, invoice)
    if invoice["status"] == "paid" or subscription["collection_method"] == "send_invoice":
        return
    if payment_behavior == "default_incomplete":
        return
    strict = payment_behavior in ("error_if_incomplete", "pending_if_incomplete")
    try:
        invoicing.collect(state, invoice, raise_on_failure=strict)
    except StripeError as exc:
        exc.persist = False  # the whole request is rolled back, as on Stripe
        raise
