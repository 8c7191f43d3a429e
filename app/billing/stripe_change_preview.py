"""What a plan or quantity change will cost, before the customer confirms it.

``preview_subscription_change`` loads the change like ``change_subscription`` does
(``stripe_plan_changes.load_change``) and asks Stripe for the invoice it would produce
(``invoices.create_preview`` with the change as ``subscription_details`` and a promotion code as
``discounts``). Changes that wait (scheduled at period end, or during a trial that continues)
show the next regular invoice instead of prorations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.billing import proration
from app.billing.gateway import ChangePreview, PreviewLine, ProrationBehavior, TrialUpdateBehavior
from app.billing.stripe_actions import StripeActions
from app.billing.stripe_client import plain
from app.billing.stripe_errors import promotion_error
from app.billing.stripe_mapping import line_is_proration, ts
from app.billing.stripe_plan_changes import Change, load_change
from app.billing.tables import Coupon


def _preview_lines(invoice: dict[str, Any], *, prorations_only: bool) -> list[PreviewLine]:
    lines = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        proration_line = line_is_proration(line)
        if prorations_only and not proration_line:
            continue
        period = line.get("period") or {}
        lines.append(
            PreviewLine(
                description=line.get("description") or "",
                amount=int(line.get("amount") or 0),
                proration=proration_line,
                period_start=ts(period.get("start")),
                period_end=ts(period.get("end")),
            )
        )
    return lines


def _recurring_after_discount(change: Change, *, coupon_used_up: bool) -> int:
    subtotal = int(change.new_price.get("unit_amount") or 0) * change.quantity
    coupon = None if coupon_used_up else change.coupon
    if coupon is None:
        return subtotal
    return subtotal - proration.discount_amount(
        subtotal, percent_off=coupon.percent_off, amount_off=coupon.amount_off
    )


def _describe(coupon: Coupon | None) -> str | None:
    if coupon is None:
        return None
    return coupon.name or proration.describe_coupon(
        name=None,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        duration=coupon.duration,
        months=coupon.duration_in_months,
    )


async def _create_preview(
    actions: StripeActions, change: Change, details: dict[str, Any] | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"subscription": change.sub["id"]}
    if details:
        params["subscription_details"] = details
    if change.discounts():
        params["discounts"] = change.discounts()
    return plain(await actions.client.v1.invoices.create_preview_async(params))


async def _preview(
    actions: StripeActions,
    change: Change,
    proration_behavior: ProrationBehavior,
    schedule_at_period_end: bool,
    trial_update_behavior: TrialUpdateBehavior,
) -> ChangePreview:
    _, end = change.period
    renews = change.renews
    currency = change.sub.get("currency") or "usd"
    description = _describe(change.coupon)

    def later(
        amount: int | None,
        *,
        effective: datetime | None,
        scheduled: bool = False,
        lines: list[PreviewLine] | None = None,
    ) -> ChangePreview:
        return ChangePreview(
            currency=currency,
            lines=lines or [],
            amount_due_now=0,
            next_invoice_date=end if renews else None,
            next_invoice_amount=amount if renews else None,
            scheduled_at_period_end=scheduled,
            effective_date=effective,
            discount_description=description,
        )

    if not change.changed:
        upcoming = await _create_preview(actions, change, None) if renews else {}
        return later(upcoming.get("amount_due"), effective=None)
    if schedule_at_period_end or (change.trialing and trial_update_behavior == "continue_trial"):
        effective = end if schedule_at_period_end else datetime.now(UTC)
        if change.interval_changes or not renews:
            amount = _recurring_after_discount(change, coupon_used_up=False)
        else:
            upcoming = await _create_preview(
                actions, change, {"items": change.items(), "proration_behavior": "none"}
            )
            amount = upcoming.get("amount_due")
        return later(amount, effective=effective, scheduled=schedule_at_period_end)
    reset = change.trialing or change.interval_changes
    details: dict[str, Any] = {
        "items": change.items(),
        "proration_behavior": proration_behavior,
    }
    if change.trialing:
        details["trial_end"] = "now"
    invoice = await _create_preview(actions, change, details)
    if not (reset or proration_behavior == "always_invoice"):
        return later(
            invoice.get("amount_due"),
            effective=datetime.now(UTC),
            lines=_preview_lines(invoice, prorations_only=True),
        )
    lines = _preview_lines(invoice, prorations_only=False)
    next_date = end
    if reset:
        next_date = max((line.period_end for line in lines if line.period_end), default=end)
    discounted = bool(invoice.get("total_discount_amounts")) and any(
        (d.get("amount") or 0) > 0 for d in invoice.get("total_discount_amounts") or []
    )
    used_up = bool(change.coupon and change.coupon.duration == "once" and discounted)
    return ChangePreview(
        currency=currency,
        lines=lines,
        amount_due_now=int(invoice.get("amount_due") or 0),
        next_invoice_date=next_date if renews else None,
        next_invoice_amount=(
            _recurring_after_discount(change, coupon_used_up=used_up) if renews else None
        ),
        scheduled_at_period_end=False,
        effective_date=datetime.now(UTC),
        discount_description=description,
    )


async def preview_subscription_change(
    actions: StripeActions,
    subscription_id: str,
    *,
    price_id: str,
    quantity: int,
    proration_behavior: ProrationBehavior,
    schedule_at_period_end: bool,
    trial_update_behavior: TrialUpdateBehavior,
    promotion_code: str | None = None,
) -> ChangePreview:
    """``subscriptions.retrieve`` + ``invoices.create_preview`` with the change as
    ``subscription_details`` (and the promotion code as ``discounts``)."""
    async with actions.guard("The change could not be previewed.", override=promotion_error):
        change = await load_change(actions, subscription_id, price_id, quantity, promotion_code)
        return await _preview(
            actions, change, proration_behavior, schedule_at_period_end, trial_update_behavior
        )
