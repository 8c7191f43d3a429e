"""Stripe objects → mirror rows: one ``row_for_*`` per object type.

Each ``row_for_*`` maps one Stripe object (a plain dict, current API shape, older shapes
tolerated) to the columns of its mirror table (``app.billing.tables``: Stripe's field names,
nested objects flattened with ``_``). Columns that are not Stripe's (``Customer.time_zone``) are
never produced here. ``ts`` and ``ref`` read Stripe's unix times and references (an id or an
expanded object); ``discount_coupon``, ``line_price``, ``line_is_proration``,
``promotion_coupon`` and ``next_phase`` read fields whose place changed between API versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Obj = Mapping[str, Any]

# --- small helpers ----


def ts(value: Any) -> datetime | None:
    """A Stripe unix time as an aware UTC datetime."""
    if value is None or value == "":
        return None
    return datetime.fromtimestamp(int(value), UTC)


def ref(value: Any) -> str | None:
    """The id of a reference that may be an id or an expanded object."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return value.get("id")
    return str(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _address(prefix: str, address: Any) -> dict[str, Any]:
    address = address if isinstance(address, Mapping) else {}
    return {
        f"{prefix}line1": _text(address.get("line1")),
        f"{prefix}line2": _text(address.get("line2")),
        f"{prefix}city": _text(address.get("city")),
        f"{prefix}state": _text(address.get("state")),
        f"{prefix}postal_code": _text(address.get("postal_code")),
        f"{prefix}country": _text(address.get("country")),
    }


def _metadata(obj: Obj) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


# --- one Stripe object → one row ----


def row_for_customer(c: Obj) -> dict[str, Any]:
    shipping = c.get("shipping") or {}
    settings = c.get("invoice_settings") or {}
    return {
        "id": c["id"],
        "email": _text(c.get("email")),
        "name": _text(c.get("name")),
        "phone": _text(c.get("phone")),
        **_address("address_", c.get("address")),
        "shipping_name": _text(shipping.get("name")),
        "shipping_phone": _text(shipping.get("phone")),
        **_address("shipping_address_", shipping.get("address")),
        "invoice_settings_default_payment_method": ref(settings.get("default_payment_method")),
        "currency": _text(c.get("currency")),
        "preferred_locales": list(c.get("preferred_locales") or []),
        "created": ts(c.get("created")) or datetime.now(UTC),
        "livemode": bool(c.get("livemode")),
        "deleted": False,
        "metadata": _metadata(c),
    }


def row_for_product(p: Obj) -> dict[str, Any]:
    return {
        "id": p["id"],
        "name": p.get("name") or p["id"],
        "description": _text(p.get("description")),
        "active": bool(p.get("active", True)),
        "unit_label": _text(p.get("unit_label")),
        "created": ts(p.get("created")) or datetime.now(UTC),
        "livemode": bool(p.get("livemode")),
        "metadata": _metadata(p),
    }


def row_for_price(p: Obj) -> dict[str, Any]:
    recurring = p.get("recurring") or {}
    return {
        "id": p["id"],
        "product": ref(p.get("product")),
        "active": bool(p.get("active", True)),
        "currency": p.get("currency") or "usd",
        "unit_amount": p.get("unit_amount"),
        "type": p.get("type") or ("recurring" if recurring else "one_time"),
        "recurring_interval": recurring.get("interval"),
        "recurring_interval_count": recurring.get("interval_count") or 1,
        "recurring_usage_type": recurring.get("usage_type"),
        "tax_behavior": p.get("tax_behavior") or "unspecified",
        "nickname": _text(p.get("nickname")),
        "lookup_key": _text(p.get("lookup_key")),
        "created": ts(p.get("created")) or datetime.now(UTC),
        "livemode": bool(p.get("livemode")),
        "metadata": _metadata(p),
    }


def _item_period(sub: Obj) -> tuple[Any, Any]:
    """Current API versions keep the period on the items; older ones on the subscription."""
    items = (sub.get("items") or {}).get("data") or []
    if items and items[0].get("current_period_start") is not None:
        return items[0]["current_period_start"], items[0]["current_period_end"]
    return sub.get("current_period_start"), sub.get("current_period_end")


def discount_coupon(discount: Any) -> str | None:
    """The coupon id of an expanded discount (``source.coupon`` now, ``coupon`` before)."""
    if not isinstance(discount, Mapping):
        return None
    source = discount.get("source") or {}
    return ref(source.get("coupon")) or ref(discount.get("coupon"))


def row_for_subscription(s: Obj) -> dict[str, Any]:
    start, end = _item_period(s)
    pause = s.get("pause_collection") or {}
    details = s.get("cancellation_details") or {}
    row: dict[str, Any] = {
        "id": s["id"],
        "customer": ref(s.get("customer")),
        "status": s.get("status") or "active",
        "currency": s.get("currency") or "usd",
        "collection_method": s.get("collection_method") or "charge_automatically",
        "created": ts(s.get("created")) or datetime.now(UTC),
        "start_date": ts(s.get("start_date") or s.get("created")) or datetime.now(UTC),
        "current_period_start": ts(start) or ts(s.get("created")) or datetime.now(UTC),
        "current_period_end": ts(end) or ts(s.get("created")) or datetime.now(UTC),
        "billing_cycle_anchor": ts(s.get("billing_cycle_anchor")),
        "cancel_at_period_end": bool(s.get("cancel_at_period_end")),
        "cancel_at": ts(s.get("cancel_at")),
        "canceled_at": ts(s.get("canceled_at")),
        "ended_at": ts(s.get("ended_at")),
        "trial_start": ts(s.get("trial_start")),
        "trial_end": ts(s.get("trial_end")),
        "pause_collection_behavior": _text(pause.get("behavior")),
        "pause_collection_resumes_at": ts(pause.get("resumes_at")),
        "default_payment_method": ref(s.get("default_payment_method")),
        "schedule": ref(s.get("schedule")),
        "latest_invoice": ref(s.get("latest_invoice")),
        "cancellation_details_reason": _text(details.get("reason")),
        "cancellation_details_feedback": _text(details.get("feedback")),
        "cancellation_details_comment": _text(details.get("comment")),
        "livemode": bool(s.get("livemode")),
        "metadata": _metadata(s),
    }
    discounts = s.get("discounts")
    legacy = s.get("discount")
    if isinstance(discounts, list) and all(isinstance(d, Mapping) for d in discounts):
        row["discount_coupon"] = discount_coupon(discounts[0]) if discounts else None
        if not discounts and isinstance(legacy, Mapping):
            row["discount_coupon"] = discount_coupon(legacy)
    elif discounts is None and "discount" in s:
        row["discount_coupon"] = discount_coupon(legacy)
    # else: discounts are unexpanded ids; the mirror keeps the coupon it knows.
    return row


def row_for_subscription_item(item: Obj, subscription_id: str, sub: Obj) -> dict[str, Any]:
    start, end = _item_period(sub)
    return {
        "id": item["id"],
        "subscription": subscription_id,
        "price": ref(item.get("price")),
        "quantity": item.get("quantity") if item.get("quantity") is not None else 1,
        "current_period_start": ts(item.get("current_period_start") or start) or datetime.now(UTC),
        "current_period_end": ts(item.get("current_period_end") or end) or datetime.now(UTC),
        "created": ts(item.get("created")) or datetime.now(UTC),
        "metadata": _metadata(item),
    }


def _invoice_subscription(i: Obj) -> str | None:
    parent = i.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return ref(details.get("subscription")) or ref(i.get("subscription"))


def row_for_invoice(i: Obj) -> dict[str, Any]:
    taxes = i.get("total_taxes")
    tax = sum(t.get("amount") or 0 for t in taxes) if isinstance(taxes, list) else i.get("tax")
    transitions = i.get("status_transitions") or {}
    return {
        "id": i["id"],
        "customer": ref(i.get("customer")),
        "subscription": _invoice_subscription(i),
        "number": _text(i.get("number")),
        "status": i.get("status") or "draft",
        "currency": i.get("currency") or "usd",
        "subtotal": i.get("subtotal") or 0,
        "tax": tax or 0,
        "total": i.get("total") or 0,
        "amount_due": i.get("amount_due") or 0,
        "amount_paid": i.get("amount_paid") or 0,
        "amount_remaining": i.get("amount_remaining") or 0,
        "collection_method": i.get("collection_method") or "charge_automatically",
        "billing_reason": _text(i.get("billing_reason")),
        "description": _text(i.get("description")),
        "created": ts(i.get("created")) or datetime.now(UTC),
        "due_date": ts(i.get("due_date")),
        "period_start": ts(i.get("period_start")),
        "period_end": ts(i.get("period_end")),
        "status_transitions_paid_at": ts(transitions.get("paid_at")),
        "hosted_invoice_url": _text(i.get("hosted_invoice_url")),
        "invoice_pdf": _text(i.get("invoice_pdf")),
        "livemode": bool(i.get("livemode")),
        "metadata": _metadata(i),
    }


def line_price(line: Obj) -> str | None:
    pricing = line.get("pricing") or {}
    details = pricing.get("price_details") or {}
    return ref(details.get("price")) or ref(line.get("price"))


def line_is_proration(line: Obj) -> bool:
    parent = line.get("parent") or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        details = parent.get(key) or {}
        if details.get("proration"):
            return True
    return bool(line.get("proration"))


def row_for_invoice_line(
    line: Obj, invoice_id: str, position: int, currency: str
) -> dict[str, Any]:
    period = line.get("period") or {}
    return {
        "id": line["id"],
        "invoice": invoice_id,
        "description": _text(line.get("description")),
        "amount": line.get("amount") or 0,
        "currency": line.get("currency") or currency,
        "quantity": line.get("quantity"),
        "price": line_price(line),
        "proration": line_is_proration(line),
        "period_start": ts(period.get("start")),
        "period_end": ts(period.get("end")),
        "position": position,
    }


def row_for_payment_method(pm: Obj) -> dict[str, Any]:
    card = pm.get("card") or {}
    details = pm.get("billing_details") or {}
    return {
        "id": pm["id"],
        "customer": ref(pm.get("customer")),
        "type": pm.get("type") or "card",
        "card_brand": _text(card.get("brand")),
        "card_last4": _text(card.get("last4")),
        "card_exp_month": card.get("exp_month"),
        "card_exp_year": card.get("exp_year"),
        "card_funding": _text(card.get("funding")),
        "card_country": _text(card.get("country")),
        "billing_details_name": _text(details.get("name")),
        "created": ts(pm.get("created")) or datetime.now(UTC),
        "livemode": bool(pm.get("livemode")),
        "metadata": _metadata(pm),
    }


def row_for_tax_id(t: Obj) -> dict[str, Any]:
    verification = t.get("verification") or {}
    owner = t.get("owner") or {}
    return {
        "id": t["id"],
        "customer": ref(t.get("customer")) or ref(owner.get("customer")),
        "type": t.get("type") or "unknown",
        "value": t.get("value") or "",
        "country": _text(t.get("country")),
        "verification_status": verification.get("status") or "unverified",
        "created": ts(t.get("created")) or datetime.now(UTC),
        "livemode": bool(t.get("livemode")),
    }


def row_for_coupon(c: Obj) -> dict[str, Any]:
    percent = c.get("percent_off")
    return {
        "id": c["id"],
        "name": _text(c.get("name")),
        "percent_off": round(percent) if percent is not None else None,
        "amount_off": c.get("amount_off"),
        "currency": _text(c.get("currency")),
        "duration": c.get("duration") or "once",
        "duration_in_months": c.get("duration_in_months"),
        "valid": bool(c.get("valid", True)),
        "created": ts(c.get("created")) or datetime.now(UTC),
        "livemode": bool(c.get("livemode")),
        "metadata": _metadata(c),
    }


def promotion_coupon(p: Obj) -> str | None:
    promotion = p.get("promotion") or {}
    return ref(promotion.get("coupon")) or ref(p.get("coupon"))


def row_for_promotion_code(p: Obj) -> dict[str, Any]:
    return {
        "id": p["id"],
        "code": p.get("code") or p["id"],
        "coupon": promotion_coupon(p),
        "active": bool(p.get("active", True)),
        "expires_at": ts(p.get("expires_at")),
        "max_redemptions": p.get("max_redemptions"),
        "times_redeemed": p.get("times_redeemed") or 0,
        "created": ts(p.get("created")) or datetime.now(UTC),
        "livemode": bool(p.get("livemode")),
    }


def next_phase(schedule: Obj) -> Obj | None:
    """The phase after the current one (the portal's scheduled change), if any."""
    phases = schedule.get("phases") or []
    current = schedule.get("current_phase") or {}
    if current.get("end_date") is not None:
        for phase in phases:
            if phase.get("start_date") is not None and phase["start_date"] >= current["end_date"]:
                return phase
        return None
    return phases[1] if len(phases) > 1 else None


def row_for_schedule(s: Obj) -> dict[str, Any]:
    upcoming = next_phase(s)
    items = (upcoming or {}).get("items") or []
    current = s.get("current_phase") or {}
    start = (upcoming or {}).get("start_date") or current.get("end_date") or s.get("created")
    return {
        "id": s["id"],
        "customer": ref(s.get("customer")),
        "subscription": ref(s.get("subscription")) or ref(s.get("released_subscription")) or "",
        "status": s.get("status") or "active",
        "end_behavior": s.get("end_behavior") or "release",
        "next_phase_start": ts(start) or datetime.now(UTC),
        # "" when there is no next phase: the portal shows no pending change for it.
        "next_phase_price": ref(items[0].get("price")) or "" if items else "",
        "next_phase_quantity": (items[0].get("quantity") or 1) if items else 1,
        "created": ts(s.get("created")) or datetime.now(UTC),
        "released_at": ts(s.get("released_at")),
        "livemode": bool(s.get("livemode")),
    }
