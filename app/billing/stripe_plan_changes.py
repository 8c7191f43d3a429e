"""Plan and quantity changes on Stripe: checking a change, and making it now or at period end.

``load_change`` reads the subscription as Stripe has it now (``subscriptions.retrieve``), the new
price (``prices.retrieve``) and a typed promotion code (``promotion_codes.list(code=…)``), and
refuses what the portal must not do (ended subscriptions, several items, inactive or foreign
prices, unusable codes). ``change_subscription`` makes the change; the preview of it is
``app.billing.stripe_change_preview``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from app.billing.gateway import (
    GatewayError,
    InvalidPromotionCode,
    ProrationBehavior,
    TrialUpdateBehavior,
)
from app.billing.stripe_actions import Keys, Outcome, StripeActions
from app.billing.stripe_client import is_missing, plain
from app.billing.stripe_errors import INVALID_PROMOTION, promotion_error
from app.billing.stripe_fetch import fetch_subscription
from app.billing.stripe_mapping import discount_coupon, ref, row_for_coupon, ts
from app.billing.tables import Coupon

ENDED = ("canceled", "incomplete_expired")


def _interval(price: dict[str, Any]) -> tuple[str, int]:
    recurring = price.get("recurring") or {}
    return recurring.get("interval") or "month", recurring.get("interval_count") or 1


@dataclass
class Change:
    """A plan/quantity change, checked against the subscription as Stripe has it now."""

    sub: dict[str, Any]
    item: dict[str, Any]
    old_price: dict[str, Any]
    new_price: dict[str, Any]
    quantity: int
    changed: bool
    promotion: dict[str, Any] | None
    coupon: Coupon | None  # the discount after the change (promotion's, else the current one)

    @property
    def trialing(self) -> bool:
        return self.sub.get("status") == "trialing"

    @property
    def period(self) -> tuple[datetime | None, datetime | None]:
        return ts(self.item.get("current_period_start")), ts(self.item.get("current_period_end"))

    @property
    def renews(self) -> bool:
        return not (self.sub.get("cancel_at_period_end") or self.sub.get("cancel_at"))

    @property
    def interval_changes(self) -> bool:
        return _interval(self.old_price) != _interval(self.new_price)

    def items(self) -> list[dict[str, Any]]:
        return [{"id": self.item["id"], "price": self.new_price["id"], "quantity": self.quantity}]

    def discounts(self) -> list[dict[str, Any]] | None:
        return [{"promotion_code": self.promotion["id"]}] if self.promotion else None


async def _coupon(actions: StripeActions, coupon_id: str | None) -> Coupon | None:
    if not coupon_id:
        return None
    row = await Coupon.objects().where(Coupon.id == coupon_id).first()
    if row is not None:
        return row
    try:
        found = plain(await actions.client.v1.coupons.retrieve_async(coupon_id))
    except stripe.InvalidRequestError as error:
        if is_missing(error):
            return None
        raise
    return Coupon(**row_for_coupon(found))


async def _promotion(actions: StripeActions, code: str, customer_id: str) -> dict[str, Any]:
    """The active promotion code a customer typed (case-insensitive on Stripe)."""
    page = await actions.client.v1.promotion_codes.list_async(
        {"code": code, "active": True, "limit": 10}
    )
    now = datetime.now(UTC).timestamp()
    for promo in (plain(p) for p in page.data):
        if promo.get("expires_at") and promo["expires_at"] <= now:
            continue
        limit = promo.get("max_redemptions")
        if limit is not None and (promo.get("times_redeemed") or 0) >= limit:
            continue
        restricted = ref(promo.get("customer"))
        if restricted and restricted != customer_id:
            continue
        return promo
    raise InvalidPromotionCode(INVALID_PROMOTION)


async def load_change(
    actions: StripeActions,
    subscription_id: str,
    price_id: str,
    quantity: int,
    promotion_code: str | None,
) -> Change:
    if quantity < 1:
        raise GatewayError("Enter a quantity of at least 1.", field="quantity")
    v1 = actions.client.v1
    sub = await fetch_subscription(actions.client, subscription_id)
    if sub.get("status") in ENDED:
        raise GatewayError(
            "This subscription has ended, so it can't be changed.", code="subscription_ended"
        )
    items = (sub.get("items") or {}).get("data") or []
    if len(items) != 1:
        raise GatewayError("This subscription can only be canceled, not changed.")
    item = items[0]
    old_price = plain(item["price"])
    if price_id == old_price["id"]:
        new_price = old_price
    else:
        try:
            new_price = plain(await v1.prices.retrieve_async(price_id))
        except stripe.InvalidRequestError as error:
            if is_missing(error):
                raise GatewayError("That plan is not available.", field="price") from None
            raise
        if (
            not new_price.get("active")
            or new_price.get("type") != "recurring"
            or new_price.get("currency") != sub.get("currency")
            or new_price.get("unit_amount") is None
        ):
            raise GatewayError("That plan is not available.", field="price")
    promotion = None
    coupon_id = None
    discounts = sub.get("discounts") or []
    if discounts:
        coupon_id = discount_coupon(discounts[0])
    if promotion_code and promotion_code.strip():
        promotion = await _promotion(
            actions, promotion_code.strip(), ref(sub.get("customer")) or ""
        )
        coupon_id = ref((promotion.get("promotion") or {}).get("coupon")) or ref(
            promotion.get("coupon")
        )
    coupon = await _coupon(actions, coupon_id)
    if promotion is not None and (
        coupon is None
        or not coupon.valid
        or (coupon.amount_off and (coupon.currency or "") != sub.get("currency"))
    ):
        raise InvalidPromotionCode(INVALID_PROMOTION)
    changed = (old_price["id"], item.get("quantity") or 1) != (new_price["id"], quantity)
    return Change(sub, item, old_price, new_price, quantity, changed, promotion, coupon)


async def change_subscription(
    actions: StripeActions,
    subscription_id: str,
    *,
    price_id: str,
    quantity: int,
    proration_behavior: ProrationBehavior,
    schedule_at_period_end: bool,
    trial_update_behavior: TrialUpdateBehavior,
    promotion_code: str | None = None,
    idempotency_key: str,
) -> None:
    """Now: ``subscriptions.update(items=[{id, price, quantity}], proration_behavior,
    discounts=[{promotion_code}], trial_end="now" when ending a trial)``, after releasing a
    pending schedule. At period end: ``subscription_schedules.create(from_subscription)``
    (or the existing schedule) then ``subscription_schedules.update(phases=[current, new])``
    with ``end_behavior=release``; a promotion code goes on the subscription right away."""
    code = (promotion_code or "").strip() or None

    async def work(keys: Keys) -> Outcome:
        change = await load_change(actions, subscription_id, price_id, quantity, code)
        customer = ref(change.sub.get("customer")) or ""
        outcome = Outcome(customer, result={"subscription": subscription_id})
        batch = outcome.batch
        schedule_id = ref(change.sub.get("schedule"))
        if not change.changed and change.promotion is None:
            batch.add(change.sub)
            outcome.result["kind"] = "unchanged"
            return outcome
        if schedule_at_period_end and change.changed:
            sub = change.sub
            if change.promotion is not None:
                sub = await actions.update_subscription(
                    subscription_id, {"discounts": change.discounts()}, keys, "discount"
                )
            schedule = await _schedule_for(actions, sub, keys)
            phases = _phases(schedule, change)
            updated = await actions.client.v1.subscription_schedules.update_async(
                schedule["id"],
                {"phases": phases, "end_behavior": "release"},
                keys("phases"),
            )
            batch.add(plain(updated))
            batch.add(await fetch_subscription(actions.client, subscription_id))
            outcome.result["kind"] = "scheduled"
            return outcome
        await actions.release_schedule(schedule_id, keys, batch)
        params: dict[str, Any] = {"proration_behavior": proration_behavior}
        if change.changed:
            params["items"] = change.items()
        if change.discounts():
            params["discounts"] = change.discounts()
        if change.trialing and change.changed and trial_update_behavior == "end_trial":
            params["trial_end"] = "now"
        batch.add(await actions.update_subscription(subscription_id, params, keys))
        outcome.result["kind"] = "changed"
        return outcome

    await actions.intent(
        idempotency_key,
        "change_subscription",
        {
            "subscription": subscription_id,
            "price_id": price_id,
            "quantity": quantity,
            "proration_behavior": proration_behavior,
            "schedule_at_period_end": schedule_at_period_end,
            "trial_update_behavior": trial_update_behavior,
            "promotion_code": code,
        },
        "Your plan couldn't be changed.",
        work,
        override=promotion_error,
    )


async def _schedule_for(actions: StripeActions, sub: dict[str, Any], keys: Keys) -> dict[str, Any]:
    schedule = sub.get("schedule")
    if isinstance(schedule, dict) and schedule.get("status") in ("active", "not_started"):
        return schedule
    if isinstance(schedule, str):
        found = plain(await actions.client.v1.subscription_schedules.retrieve_async(schedule))
        if found.get("status") in ("active", "not_started"):
            return found
    created = await actions.client.v1.subscription_schedules.create_async(
        {"from_subscription": sub["id"]}, keys("schedule")
    )
    return plain(created)


def _phases(schedule: dict[str, Any], change: Change) -> list[dict[str, Any]]:
    """The current phase as it is, then the new plan from the current phase's end."""
    phases = schedule.get("phases") or []
    current_window = schedule.get("current_phase") or {}
    current = next(
        (p for p in phases if p.get("start_date") == current_window.get("start_date")),
        phases[0] if phases else None,
    )
    if current is None:
        raise GatewayError("This subscription can't be scheduled to change.")
    return [
        {
            "items": [
                {"price": ref(i.get("price")), "quantity": i.get("quantity") or 1}
                for i in current.get("items") or []
            ],
            "start_date": current["start_date"],
            "end_date": current["end_date"],
            "proration_behavior": "none",
        },
        {
            "items": [{"price": change.new_price["id"], "quantity": change.quantity}],
            "proration_behavior": "none",
        },
    ]
