"""Does Portico's mirror say what Stripe (the test server) says about a customer?

``mirror_differences`` compares, field by field, what a Stripe-mode journey can change: the
customer's details and default card, its subscriptions (status, cancellation, pause, schedule,
discount, items), its invoices (status and amounts), its attached cards and its tax ids.
Journeys call it once the webhooks for their changes were delivered, so it checks the
write-through and the webhook re-fetches together: a field the mapping drops, or an event that
puts back an older state, shows up as a difference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from e2e.support.database import PorticoDatabase
from tests.stripe_api import StripeAPIServer

CUSTOMER_FIELDS = ("name", "phone")
ADDRESS_PARTS = ("line1", "line2", "city", "state", "postal_code", "country")
INVOICE_FIELDS = ("status", "number", "total", "amount_due", "amount_paid", "amount_remaining")


def _ref(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _epoch(value: Any) -> int | None:
    """A mirror timestamp (SQLite text, or a datetime) as Unix seconds."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return int(moment.timestamp())


def _empty(value: Any) -> Any:
    return None if value in ("", {}, []) else value


def _compare(where: str, stripe: dict[str, Any], mirror: dict[str, Any]) -> list[str]:
    return [
        f"{where}.{name}: Stripe {stripe[name]!r}, mirror {mirror.get(name)!r}"
        for name in stripe
        if _empty(stripe[name]) != _empty(mirror.get(name))
    ]


def _customer(stripe_api: StripeAPIServer, customer_id: str) -> dict[str, Any]:
    customer = stripe_api.get(customer_id) or {}
    address = customer.get("address") or {}
    shipping = customer.get("shipping") or {}
    shipping_address = shipping.get("address") or {}
    values = {name: customer.get(name) for name in CUSTOMER_FIELDS}
    values.update({f"address_{part}": address.get(part) for part in ADDRESS_PARTS})
    values["shipping_name"] = shipping.get("name")
    values["shipping_phone"] = shipping.get("phone")
    values.update(
        {f"shipping_address_{part}": shipping_address.get(part) for part in ADDRESS_PARTS}
    )
    values["invoice_settings_default_payment_method"] = _ref(
        (customer.get("invoice_settings") or {}).get("default_payment_method")
    )
    return values


def _discount_coupon(stripe_api: StripeAPIServer, subscription: dict[str, Any]) -> str | None:
    for entry in subscription.get("discounts") or []:
        discount = entry if isinstance(entry, dict) else stripe_api.get(entry) or {}
        coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
        return _ref(coupon)
    return None


def _subscription(stripe_api: StripeAPIServer, subscription: dict[str, Any]) -> dict[str, Any]:
    pause = subscription.get("pause_collection") or {}
    details = subscription.get("cancellation_details") or {}
    return {
        "status": subscription.get("status"),
        "cancel_at_period_end": bool(subscription.get("cancel_at_period_end")),
        "cancel_at": subscription.get("cancel_at"),
        "ended_at": subscription.get("ended_at"),
        "pause_collection_behavior": pause.get("behavior"),
        "pause_collection_resumes_at": pause.get("resumes_at"),
        "schedule": _ref(subscription.get("schedule")),
        "cancellation_details_feedback": details.get("feedback"),
        "cancellation_details_comment": details.get("comment"),
        "discount_coupon": _discount_coupon(stripe_api, subscription),
        "items": sorted(
            (_ref(item.get("price")), item.get("quantity"))
            for item in (subscription.get("items") or {}).get("data") or []
        ),
    }


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The invoice's subscription (under ``parent`` in current API versions)."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _ref(details.get("subscription") or invoice.get("subscription"))


def _mirror_subscription(db: PorticoDatabase, row: Any) -> dict[str, Any]:
    values = dict(row)
    values["cancel_at_period_end"] = bool(values["cancel_at_period_end"])
    for name in ("cancel_at", "ended_at", "pause_collection_resumes_at"):
        values[name] = _epoch(values[name])
    items = db.query(
        "SELECT price, quantity FROM billing_subscription_item WHERE subscription = ?", row["id"]
    )
    values["items"] = sorted((item["price"], item["quantity"]) for item in items)
    return values


def mirror_differences(
    db: PorticoDatabase, stripe_api: StripeAPIServer, customer_id: str
) -> list[str]:
    """What the mirror has differently from Stripe for one customer (empty when they agree)."""
    problems: list[str] = []
    rows = db.query("SELECT * FROM billing_customer WHERE id = ?", customer_id)
    if not rows:
        return [f"{customer_id} is not in the mirror"]
    problems += _compare(customer_id, _customer(stripe_api, customer_id), dict(rows[0]))

    listed = stripe_api.call("GET", "/v1/subscriptions", customer=customer_id, status="all")
    for subscription in listed["data"]:
        found = db.query("SELECT * FROM billing_subscription WHERE id = ?", subscription["id"])
        if not found:
            problems.append(f"{subscription['id']} is not in the mirror")
            continue
        expected = _subscription(stripe_api, subscription)
        problems += _compare(subscription["id"], expected, _mirror_subscription(db, found[0]))

    attached = stripe_api.call("GET", "/v1/payment_methods", customer=customer_id)["data"]
    mirrored = db.query("SELECT id FROM billing_payment_method WHERE customer = ?", customer_id)
    cards = (sorted(pm["id"] for pm in attached), sorted(row["id"] for row in mirrored))
    if cards[0] != cards[1]:
        problems.append(f"{customer_id} cards: Stripe {cards[0]}, mirror {cards[1]}")

    invoices = stripe_api.call("GET", "/v1/invoices", customer=customer_id, limit=100)["data"]
    for invoice in invoices:
        found = db.query("SELECT * FROM billing_invoice WHERE id = ?", invoice["id"])
        if not found:
            problems.append(f"{invoice['id']} ({invoice['status']}) is not in the mirror")
            continue
        expected = {name: invoice.get(name) for name in INVOICE_FIELDS}
        expected["subscription"] = _invoice_subscription(invoice)
        problems += _compare(invoice["id"], expected, dict(found[0]))

    tax_ids = stripe_api.call("GET", f"/v1/customers/{customer_id}/tax_ids")["data"]
    on_stripe = sorted((t["id"], t["type"], t["value"]) for t in tax_ids)
    rows = db.query("SELECT id, type, value FROM billing_tax_id WHERE customer = ?", customer_id)
    in_mirror = sorted((row["id"], row["type"], row["value"]) for row in rows)
    if on_stripe != in_mirror:
        problems.append(f"{customer_id} tax ids: Stripe {on_stripe}, mirror {in_mirror}")
    return problems
