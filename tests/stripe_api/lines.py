"""Invoice line items and pending invoice items (what an invoice is made of).

* :func:`subscription_line` - a subscription item billed for a period, described the way
  Stripe does (``1 x Pro (at $30.00 / month)`` with a multiplication sign);
* :func:`new_invoice_item` - a pending ``invoiceitem`` (``ii_...``), e.g. a proration, that
  waits for the customer's next invoice; :func:`pending_items` finds them;
* :func:`line_for_invoice_item` - the invoice line (``il_...``) an invoice item becomes, with
  ``parent.subscription_item_details.proration`` set for prorations.

Lines follow the current API shape (``parent``, ``pricing.price_details``, ``period``);
taxes and per-line discount amounts are always empty.
"""

from __future__ import annotations

from typing import Any

from . import periods
from .state import State

TIMES = "\u00d7"  # the multiplication sign in Stripe's "2 x Pro" line descriptions
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "chf": "CHF "}
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "ugx", "xaf", "xof"}


def money(amount: int, currency: str) -> str:
    symbol = SYMBOLS.get(currency, currency.upper() + " ")
    if currency in ZERO_DECIMAL:
        return f"{symbol}{amount}"
    return f"{symbol}{amount / 100:,.2f}"


def item_label(state: State, price: dict[str, Any], quantity: int) -> str:
    product = state.get("product", price["product"]) or {"name": price["product"]}
    return f"{quantity} {TIMES} {product['name']}" if quantity != 1 else product["name"]


def subscription_line(
    state: State, subscription: dict[str, Any], item: dict[str, Any], start: int, end: int
) -> dict[str, Any]:
    price = state.require("price", item["price"])
    quantity = item["quantity"]
    amount = price["unit_amount"] * quantity
    interval = price["recurring"]["interval"] if price["recurring"] else "once"
    product = state.get("product", price["product"]) or {"name": price["product"]}
    description = (
        f"{quantity} {TIMES} {product['name']} (at {money(price['unit_amount'], price['currency'])}"
        f" / {interval})"
    )
    return _line(
        state,
        amount,
        price,
        quantity,
        description,
        start,
        end,
        subscription=subscription["id"],
        subscription_item=item["id"],
        proration=False,
    )


def _line(
    state: State,
    amount: int,
    price: dict[str, Any],
    quantity: int,
    description: str,
    start: int,
    end: int,
    *,
    subscription: str | None,
    subscription_item: str | None,
    proration: bool,
    invoice_item: str | None = None,
) -> dict[str, Any]:
    if subscription_item:
        parent = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
                "subscription_item": subscription_item,
            },
            "type": "subscription_item_details",
        }
    else:
        parent = {
            "invoice_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    return {
        "id": state.new_id("il_"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": end, "start": start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": quantity,
        "subscription": subscription,
        "subtotal": amount,
        "taxes": [],
    }


def new_invoice_item(
    state: State,
    *,
    customer: str,
    price: dict[str, Any],
    quantity: int,
    amount: int,
    description: str,
    start: int,
    end: int,
    subscription: str | None = None,
    subscription_item: str | None = None,
    proration: bool = False,
) -> dict[str, Any]:
    item = {
        "id": state.new_id("ii_"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": price["currency"],
        "customer": customer,
        "customer_account": None,
        "date": state.now(),
        "description": description,
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": amount,
        "parent": (
            {
                "subscription_details": {
                    "subscription": subscription,
                    "subscription_item": subscription_item,
                },
                "type": "subscription_details",
            }
            if subscription
            else None
        ),
        "period": {"end": end, "start": start},
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "proration": proration,
        "proration_details": {"credited_items": None, "discount_amounts": []},
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": None,
    }
    state.insert("invoiceitem", item)
    state.emit("invoiceitem.created", item)
    return item


def pending_items(
    state: State, customer: str, subscription: str | None = None
) -> list[dict[str, Any]]:
    items = [
        ii
        for ii in state.table("invoiceitem").values()
        if ii["customer"] == customer and ii["invoice"] is None
    ]
    if subscription is not None:
        items = [ii for ii in items if _item_subscription(ii) == subscription]
    return sorted(items, key=state.sort_key)


def _item_subscription(ii: dict[str, Any]) -> str | None:
    parent = ii.get("parent") or {}
    return (parent.get("subscription_details") or {}).get("subscription")


def line_for_invoice_item(state: State, ii: dict[str, Any]) -> dict[str, Any]:
    price = state.require("price", ii["pricing"]["price_details"]["price"])
    details = (ii.get("parent") or {}).get("subscription_details") or {}
    return _line(
        state,
        ii["amount"],
        price,
        ii["quantity"],
        ii["description"],
        ii["period"]["start"],
        ii["period"]["end"],
        subscription=details.get("subscription"),
        subscription_item=details.get("subscription_item"),
        proration=ii["proration"],
        invoice_item=ii["id"],
    )


def proration_description(
    state: State, price: dict[str, Any], quantity: int, at: int, *, credit: bool
) -> str:
    prefix = "Unused time on" if credit else "Remaining time on"
    return f"{prefix} {item_label(state, price, quantity)} after {periods.format_date(at)}"
