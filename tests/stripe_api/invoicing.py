"""Invoices, their lines, pending invoice items and payment collection.

Modelled Stripe behaviour:

* Subscription invoices carry one line per subscription item for the new period
  (``1 x Pro (at $30.00 / month)``, with Stripe's multiplication sign) plus the customer's
  pending invoice items for that subscription (proration lines,
  ``parent.subscription_item_details.proration = true``).
* Totals: ``subtotal`` = sum of lines, coupon discounts (``total_discount_amounts``) reduce
  it to ``total``; at finalisation the customer's balance is applied (``starting_balance``,
  ``ending_balance``); a negative total becomes customer credit and ``amount_due`` is 0.
* Finalising assigns ``number`` (``{invoice_prefix}-0001``), ``hosted_invoice_url`` and
  ``invoice_pdf`` (served by this server), and marks zero-amount invoices paid.
* Collection charges the explicit payment method, else the subscription's
  ``default_payment_method``, else the customer's
  ``invoice_settings.default_payment_method``; a decline bumps ``attempt_count``, emits
  ``invoice.payment_failed`` and moves the subscription to ``incomplete`` (first invoice) or
  ``past_due``; a later successful payment makes it ``active`` again.

Simplified: no taxes, no payment intents/charges objects, no dunning retries.
"""

from __future__ import annotations

from typing import Any

from . import lines as line_items
from .errors import StripeError, no_payment_method
from .objects import list_object, previous_attributes
from .resources import discounts, payment_methods
from .state import State


def build_invoice(
    state: State,
    customer: dict[str, Any],
    *,
    lines: list[dict[str, Any]],
    billing_reason: str,
    subscription: dict[str, Any] | None = None,
    invoice_items: list[dict[str, Any]] | None = None,
    discount_ids: list[str] | None = None,
    period: tuple[int, int] | None = None,
    preview: bool = False,
) -> dict[str, Any]:
    """A draft invoice (stored unless ``preview``); invoice items are consumed by it."""
    now = state.now()
    invoice_items = invoice_items or []
    all_lines = [*lines, *(line_items.line_for_invoice_item(state, ii) for ii in invoice_items)]
    currency = all_lines[0]["currency"] if all_lines else (customer.get("currency") or "usd")
    invoice_id = "upcoming_" + state.new_id("in_") if preview else state.new_id("in_")
    for line in all_lines:
        line["invoice"] = None if preview else invoice_id
        if preview:
            line["id"] = "il_tmp_" + line["id"][3:]
    sub_id = subscription["id"] if subscription else None
    if discount_ids is None:
        discount_ids = list(subscription["discounts"]) if subscription else []
    collection = subscription["collection_method"] if subscription else "charge_automatically"
    invoice: dict[str, Any] = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": state.account["name"],
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": None,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": not preview,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": collection,
        "confirmation_secret": None,
        "created": now,
        "currency": currency,
        "custom_fields": customer["invoice_settings"]["custom_fields"],
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": customer["shipping"],
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [
            {"type": t["type"], "value": t["value"]}
            for t in state.all("tax_id")
            if t["customer"] == customer["id"]
        ],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": list(discount_ids),
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": customer["invoice_settings"]["footer"],
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(f"/v1/invoices/{invoice_id}/lines", all_lines),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1] if period else now,
        "period_start": period[0] if period else now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }
    if sub_id:
        invoice["parent"] = {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": sub_id,
                "subscription_proration_date": None,
            },
            "type": "subscription_details",
        }
    compute_totals(state, invoice, balance=customer["balance"] if preview else 0)
    if preview:
        invoice["starting_balance"] = customer["balance"]
        return invoice
    for ii in invoice_items:
        ii["invoice"] = invoice_id
    state.insert("invoice", invoice)
    state.emit("invoice.created", invoice)
    return invoice


def compute_totals(state: State, invoice: dict[str, Any], *, balance: int) -> None:
    lines = invoice["lines"]["data"]
    subtotal = sum(line["amount"] for line in lines)
    base = sum(line["amount"] for line in lines if line["discountable"])
    amounts = discounts.discount_amounts(state, invoice["discounts"], base, invoice["currency"])
    total = subtotal - sum(amount for _, amount in amounts)
    invoice["subtotal"] = invoice["subtotal_excluding_tax"] = subtotal
    invoice["total"] = invoice["total_excluding_tax"] = total
    invoice["total_discount_amounts"] = [
        {"amount": amount, "discount": discount_id} for discount_id, amount in amounts
    ]
    invoice["amount_due"] = max(total + balance, 0)
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]


def finalize(state: State, invoice: dict[str, Any]) -> None:
    if invoice["status"] != "draft":
        raise StripeError(400, "This invoice is already finalized.", code="invoice_not_editable")
    customer = state.require("customer", invoice["customer"])
    now = state.now()
    compute_totals(state, invoice, balance=customer["balance"])
    invoice["starting_balance"] = customer["balance"]
    net = invoice["total"] + customer["balance"]
    invoice["ending_balance"] = min(net, 0)
    if customer["balance"] != invoice["ending_balance"]:
        before = dict(customer)
        customer["balance"] = invoice["ending_balance"]
        state.emit("customer.updated", customer, previous_attributes(state, before, customer))
    invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    invoice["status"] = "open"
    invoice["effective_at"] = now
    invoice["status_transitions"]["finalized_at"] = now
    invoice["hosted_invoice_url"] = f"{state.base_url}/i/{invoice['id']}"
    invoice["invoice_pdf"] = f"{state.base_url}/i/{invoice['id']}/pdf"
    if invoice["collection_method"] == "send_invoice":
        subscription = _subscription(state, invoice)
        days = (subscription or {}).get("days_until_due") or 30
        invoice["due_date"] = now + days * 86400
    _consume_once_discounts(state, invoice)
    state.emit("invoice.finalized", invoice)
    if invoice["amount_due"] == 0:
        mark_paid(state, invoice, attempted=False)


def _consume_once_discounts(state: State, invoice: dict[str, Any]) -> None:
    subscription = _subscription(state, invoice)
    if not subscription:
        return
    for discount_id in invoice["discounts"]:
        discount = state.get("discount", discount_id)
        coupon = discount and state.get("coupon", discount["source"]["coupon"])
        if coupon and coupon["duration"] == "once" and discount_id in subscription["discounts"]:
            subscription["discounts"].remove(discount_id)


def _subscription(state: State, invoice: dict[str, Any]) -> dict[str, Any] | None:
    parent = invoice.get("parent") or {}
    sub_id = (parent.get("subscription_details") or {}).get("subscription")
    return state.get("subscription", sub_id)


def mark_paid(
    state: State, invoice: dict[str, Any], *, attempted: bool = True, out_of_band: bool = False
) -> None:
    now = state.now()
    invoice["status"] = "paid"
    invoice["amount_paid"] = 0 if out_of_band else invoice["amount_due"]
    invoice["amount_paid_off_stripe"] = invoice["amount_due"] if out_of_band else None
    invoice["amount_remaining"] = 0
    invoice["attempted"] = invoice["attempted"] or attempted
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["paid_at"] = now
    invoice["auto_advance"] = False
    state.emit("invoice.updated", invoice)
    state.emit("invoice.paid", invoice)
    state.emit("invoice.payment_succeeded", invoice)
    _sync_subscription(state, invoice, paid=True)


def collect(
    state: State,
    invoice: dict[str, Any],
    *,
    payment_method: str | None = None,
    raise_on_failure: bool = False,
) -> bool:
    """Charge an open invoice; returns whether it is paid."""
    if invoice["status"] == "paid":
        return True
    customer = state.require("customer", invoice["customer"])
    subscription = _subscription(state, invoice)
    pm_id = (
        payment_method
        or invoice["default_payment_method"]
        or (subscription or {}).get("default_payment_method")
        or customer["invoice_settings"]["default_payment_method"]
    )
    error: StripeError | None = None
    pm = state.get("payment_method", pm_id) if pm_id else None
    if pm is None:
        error = no_payment_method(persist=True)
    else:
        try:
            payment_methods.charge(pm, persist=True)
        except StripeError as exc:
            error = exc
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    if error is None:
        mark_paid(state, invoice)
        return True
    invoice["next_payment_attempt"] = state.now() + 3 * 86400
    invoice["last_finalization_error"] = None
    state.emit("invoice.payment_failed", invoice)
    state.emit("invoice.updated", invoice)
    _sync_subscription(state, invoice, paid=False)
    if raise_on_failure:
        raise error
    return False


def _sync_subscription(state: State, invoice: dict[str, Any], *, paid: bool) -> None:
    subscription = _subscription(state, invoice)
    if not subscription or subscription["latest_invoice"] != invoice["id"]:
        return
    status = subscription["status"]
    if paid and status in ("incomplete", "past_due", "unpaid"):
        new_status = "active"
    elif not paid and status == "incomplete":
        new_status = "incomplete"
    elif not paid and status in ("active", "trialing"):
        new_status = "past_due"
    else:
        return
    if new_status != status:
        before = dict(subscription)
        subscription["status"] = new_status
        state.emit(
            "customer.subscription.updated",
            subscription,
            previous_attributes(state, before, subscription),
        )


def void(state: State, invoice: dict[str, Any]) -> None:
    if invoice["status"] != "open":
        raise StripeError(400, "You can only void open invoices.", code="invoice_not_editable")
    invoice["status"] = "void"
    invoice["amount_remaining"] = 0
    invoice["status_transitions"]["voided_at"] = state.now()
    state.emit("invoice.voided", invoice)
    state.emit("invoice.updated", invoice)
