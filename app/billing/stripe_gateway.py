"""The Stripe gateway: every ``BillingGateway`` write as Stripe API calls, mirrored at once.

How one action runs (``_intent``):

1. The customer's intent key is looked up in ``IdempotencyRecord``: a finished intent with the
   same arguments returns its stored result without calling Stripe; different arguments raise
   ``IdempotencyConflict``.
2. Stripe is called (async SDK methods) within ``stripe_client.DEADLINE`` seconds in total. Every
   POST carries the request option ``idempotency_key = "<intent>:<action>:<step>"``: a double
   submit, a retry after a timeout or a replay after a crash never changes Stripe twice (Stripe
   answers the stored response; a replayed object is re-fetched so the mirror gets current data).
   Requests that change Stripe ask for the expansions the mirror needs, so they answer with the
   subscription, its items, prices, products, latest invoice, discounts and schedule.
3. The returned objects (and referenced objects the mirror lacks) are written in ONE write
   transaction together with the idempotency record. When Stripe fails nothing is written.

Errors (``stripe_client.translate``): card errors → ``CardDeclined`` with Stripe's message,
invalid requests → ``GatewayError`` saying what failed and why, unreachable / 5xx / rate limited /
too slow → ``GatewayUnavailable``.

Each method's docstring names the Stripe calls it makes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import stripe

from app import db
from app.billing import idempotency, proration, stripe_sync
from app.billing.gateway import (
    AddPaymentMethodStart,
    CancelProration,
    CardInput,
    ChangePreview,
    CustomerDetails,
    GatewayError,
    IdempotencyConflict,
    InvalidPromotionCode,
    InvoiceDocument,
    PaymentResult,
    PreviewLine,
    ProrationBehavior,
    TrialUpdateBehavior,
)
from app.billing.stripe_client import (
    DEADLINE,
    MAX_NETWORK_RETRIES,
    REQUEST_TIMEOUT,
    StripeConnection,
    guard,
    is_missing,
    plain,
    replayed,
)
from app.billing.sync import (
    Batch,
    discount_coupon,
    line_is_proration,
    ref,
    row_for_coupon,
    ts,
)
from app.billing.tables import Coupon, Customer, IdempotencyRecord, Invoice, Subscription
from app.configuration.features import CANCELLATION_REASONS
from app.settings import Settings

log = logging.getLogger("portico.stripe")

SUBSCRIPTION_EXPAND = stripe_sync.SUBSCRIPTION_EXPAND
ENDED = ("canceled", "incomplete_expired")
COMMENT_LIMIT = 5000  # Stripe's limit on cancellation_details.comment
INVALID_PROMOTION = "That promotion code is not valid."
OFFER_GONE = "This offer is no longer available."


@dataclass
class Outcome:
    """What one action's Stripe calls produced: objects for the mirror, the customer the intent
    belongs to, and the result stored with the idempotency record."""

    customer: str
    batch: Batch = field(default_factory=Batch)
    result: dict[str, Any] = field(default_factory=dict)


class Keys:
    """Idempotency keys for the Stripe requests of one intent: ``<intent>:<action>:<step>``."""

    def __init__(self, intent: str, action: str) -> None:
        self.prefix = f"{intent}:{action}"

    def __call__(self, step: str) -> dict[str, Any]:
        return {"idempotency_key": f"{self.prefix}:{step}"[:255]}


def _decode(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str | bytes):
        return msgspec.json.decode(raw) if raw else {}
    return dict(raw or {})


def _promotion_error(error: stripe.StripeError) -> GatewayError | None:
    param = getattr(error, "param", None) or ""
    if isinstance(error, stripe.InvalidRequestError) and (
        "promotion_code" in param or error.code in ("coupon_expired", "promotion_code_invalid")
    ):
        return InvalidPromotionCode(INVALID_PROMOTION)
    return None


def _coupon_error(error: stripe.StripeError) -> GatewayError | None:
    param = getattr(error, "param", None) or ""
    if isinstance(error, stripe.InvalidRequestError) and (
        param.startswith("discounts") or error.code == "coupon_expired"
    ):
        return GatewayError(OFFER_GONE, code="coupon_invalid")
    return None


def _tax_id_error(error: stripe.StripeError) -> GatewayError | None:
    param = getattr(error, "param", None) or ""
    if not isinstance(error, stripe.InvalidRequestError):
        return None
    if error.code == "tax_id_invalid" or param == "value":
        return GatewayError("Enter a valid tax ID.", code="invalid_tax_id", field="value")
    if param == "type":
        return GatewayError("Choose a tax ID type.", code="invalid_tax_id_type", field="type")
    return None


def _payment_method_error(error: stripe.StripeError) -> GatewayError | None:
    if isinstance(error, stripe.InvalidRequestError) and (
        is_missing(error) or "default_payment_method" in (getattr(error, "param", None) or "")
    ):
        return GatewayError(
            "That payment method is no longer on your account.", code="resource_missing"
        )
    return None


def _interval(price: dict[str, Any]) -> tuple[str, int]:
    recurring = price.get("recurring") or {}
    return recurring.get("interval") or "month", recurring.get("interval_count") or 1


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


@dataclass
class _Change:
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


class StripeGateway:
    """``BillingGateway`` over the Stripe API (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        deadline: float = DEADLINE,
        max_network_retries: int = MAX_NETWORK_RETRIES,
    ) -> None:
        self.settings = settings
        self.deadline = deadline
        self.connection = StripeConnection(
            settings.stripe_secret_key,
            settings.stripe_api_base,
            timeout=request_timeout,
            max_network_retries=max_network_retries,
        )

    @property
    def client(self) -> stripe.StripeClient:
        return self.connection.client

    async def aclose(self) -> None:
        """Close the HTTP connections (app shutdown)."""
        await self.connection.aclose()

    # --- the frame of every write ----

    async def _intent(
        self,
        key: str,
        action: str,
        arguments: dict[str, Any],
        failure: str,
        work: Callable[[Keys], Awaitable[Outcome]],
        *,
        override: Callable[[stripe.StripeError], GatewayError | None] | None = None,
    ) -> dict[str, Any]:
        if not key:
            raise ValueError("an idempotency key is required")
        digest = idempotency.request_hash(action, arguments)
        found = await IdempotencyRecord.select().where(IdempotencyRecord.id == key).first()
        if found is not None:
            if found["request_hash"] != digest:
                raise IdempotencyConflict()
            return _decode(found["result"])
        async with guard(failure, deadline=self.deadline, override=override):
            outcome = await work(Keys(key, action))
            await stripe_sync.complete(self.client, outcome.batch)
        async with db.write():
            await outcome.batch.apply()
            await IdempotencyRecord.insert(
                IdempotencyRecord(
                    id=key,
                    customer=outcome.customer,
                    action=action,
                    request_hash=digest,
                    result=msgspec.json.encode(outcome.result).decode(),
                    created=datetime.now(UTC),
                )
            ).on_conflict(target=IdempotencyRecord.id, action="DO NOTHING")
        return outcome.result

    async def _fresh_subscription(self, obj: Any) -> dict[str, Any]:
        """The subscription a write answered with, re-fetched if Stripe replayed an old answer."""
        sub = plain(obj)
        if replayed(obj):
            return await stripe_sync.fetch_subscription(self.client, sub["id"])
        return sub

    async def _update_subscription(
        self, subscription_id: str, params: dict[str, Any], keys: Keys, step: str = "update"
    ) -> dict[str, Any]:
        obj = await self.client.v1.subscriptions.update_async(
            subscription_id, {**params, "expand": SUBSCRIPTION_EXPAND}, keys(step)
        )
        return await self._fresh_subscription(obj)

    async def _mirror_subscription(self, subscription_id: str) -> Subscription:
        sub = await Subscription.objects().where(Subscription.id == subscription_id).first()
        if sub is None:
            raise GatewayError("That subscription is not on your account.", code="resource_missing")
        return sub

    async def _live_subscription(self, subscription_id: str, verb: str) -> Subscription:
        sub = await self._mirror_subscription(subscription_id)
        if sub.status in ENDED:
            raise GatewayError(
                f"This subscription has ended, so it can't be {verb}.", code="subscription_ended"
            )
        return sub

    async def _release_schedule(self, schedule_id: str | None, keys: Keys, batch: Batch) -> None:
        """Release a pending schedule (the scheduled phase never starts); one that is no longer
        active is left alone."""
        if not schedule_id:
            return
        try:
            released = await self.client.v1.subscription_schedules.release_async(
                schedule_id, None, keys("release")
            )
        except stripe.InvalidRequestError as error:
            log.info("schedule %s not released: %s", schedule_id, error.user_message)
            return
        batch.add(plain(released))

    # --- subscriptions: changes ----

    async def _coupon(self, coupon_id: str | None) -> Coupon | None:
        if not coupon_id:
            return None
        row = await Coupon.objects().where(Coupon.id == coupon_id).first()
        if row is not None:
            return row
        try:
            found = plain(await self.client.v1.coupons.retrieve_async(coupon_id))
        except stripe.InvalidRequestError as error:
            if is_missing(error):
                return None
            raise
        return Coupon(**row_for_coupon(found))

    async def _promotion(self, code: str, customer_id: str) -> dict[str, Any]:
        """The active promotion code a customer typed (case-insensitive on Stripe)."""
        page = await self.client.v1.promotion_codes.list_async(
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

    async def _load_change(
        self, subscription_id: str, price_id: str, quantity: int, promotion_code: str | None
    ) -> _Change:
        if quantity < 1:
            raise GatewayError("Enter a quantity of at least 1.", field="quantity")
        v1 = self.client.v1
        sub = await stripe_sync.fetch_subscription(self.client, subscription_id)
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
            promotion = await self._promotion(
                promotion_code.strip(), ref(sub.get("customer")) or ""
            )
            coupon_id = ref((promotion.get("promotion") or {}).get("coupon")) or ref(
                promotion.get("coupon")
            )
        coupon = await self._coupon(coupon_id)
        if promotion is not None and (
            coupon is None
            or not coupon.valid
            or (coupon.amount_off and (coupon.currency or "") != sub.get("currency"))
        ):
            raise InvalidPromotionCode(INVALID_PROMOTION)
        changed = (old_price["id"], item.get("quantity") or 1) != (new_price["id"], quantity)
        return _Change(sub, item, old_price, new_price, quantity, changed, promotion, coupon)

    def _recurring_after_discount(self, change: _Change, *, coupon_used_up: bool) -> int:
        subtotal = int(change.new_price.get("unit_amount") or 0) * change.quantity
        coupon = None if coupon_used_up else change.coupon
        if coupon is None:
            return subtotal
        return subtotal - proration.discount_amount(
            subtotal, percent_off=coupon.percent_off, amount_off=coupon.amount_off
        )

    def _describe(self, coupon: Coupon | None) -> str | None:
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
        self, change: _Change, details: dict[str, Any] | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"subscription": change.sub["id"]}
        if details:
            params["subscription_details"] = details
        if change.discounts():
            params["discounts"] = change.discounts()
        return plain(await self.client.v1.invoices.create_preview_async(params))

    async def _preview(
        self,
        change: _Change,
        proration_behavior: ProrationBehavior,
        schedule_at_period_end: bool,
        trial_update_behavior: TrialUpdateBehavior,
    ) -> ChangePreview:
        _, end = change.period
        renews = change.renews
        currency = change.sub.get("currency") or "usd"
        description = self._describe(change.coupon)

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
            upcoming = await self._create_preview(change, None) if renews else {}
            return later(upcoming.get("amount_due"), effective=None)
        if schedule_at_period_end or (
            change.trialing and trial_update_behavior == "continue_trial"
        ):
            effective = end if schedule_at_period_end else datetime.now(UTC)
            if change.interval_changes or not renews:
                amount = self._recurring_after_discount(change, coupon_used_up=False)
            else:
                upcoming = await self._create_preview(
                    change, {"items": change.items(), "proration_behavior": "none"}
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
        invoice = await self._create_preview(change, details)
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
                self._recurring_after_discount(change, coupon_used_up=used_up) if renews else None
            ),
            scheduled_at_period_end=False,
            effective_date=datetime.now(UTC),
            discount_description=description,
        )

    async def preview_subscription_change(
        self,
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
        async with guard(
            "The change could not be previewed.", deadline=self.deadline, override=_promotion_error
        ):
            change = await self._load_change(subscription_id, price_id, quantity, promotion_code)
            return await self._preview(
                change, proration_behavior, schedule_at_period_end, trial_update_behavior
            )

    async def change_subscription(
        self,
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
            change = await self._load_change(subscription_id, price_id, quantity, code)
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
                    sub = await self._update_subscription(
                        subscription_id, {"discounts": change.discounts()}, keys, "discount"
                    )
                schedule = await self._schedule_for(sub, keys)
                phases = self._phases(schedule, change)
                updated = await self.client.v1.subscription_schedules.update_async(
                    schedule["id"],
                    {"phases": phases, "end_behavior": "release"},
                    keys("phases"),
                )
                batch.add(plain(updated))
                batch.add(await stripe_sync.fetch_subscription(self.client, subscription_id))
                outcome.result["kind"] = "scheduled"
                return outcome
            await self._release_schedule(schedule_id, keys, batch)
            params: dict[str, Any] = {"proration_behavior": proration_behavior}
            if change.changed:
                params["items"] = change.items()
            if change.discounts():
                params["discounts"] = change.discounts()
            if change.trialing and change.changed and trial_update_behavior == "end_trial":
                params["trial_end"] = "now"
            batch.add(await self._update_subscription(subscription_id, params, keys))
            outcome.result["kind"] = "changed"
            return outcome

        await self._intent(
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
            override=_promotion_error,
        )

    async def _schedule_for(self, sub: dict[str, Any], keys: Keys) -> dict[str, Any]:
        schedule = sub.get("schedule")
        if isinstance(schedule, dict) and schedule.get("status") in ("active", "not_started"):
            return schedule
        if isinstance(schedule, str):
            found = plain(await self.client.v1.subscription_schedules.retrieve_async(schedule))
            if found.get("status") in ("active", "not_started"):
                return found
        created = await self.client.v1.subscription_schedules.create_async(
            {"from_subscription": sub["id"]}, keys("schedule")
        )
        return plain(created)

    def _phases(self, schedule: dict[str, Any], change: _Change) -> list[dict[str, Any]]:
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

    # --- subscriptions: lifecycle ----

    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        at_period_end: bool,
        proration_behavior: CancelProration,
        reason: str | None,
        comment: str | None,
        idempotency_key: str,
    ) -> None:
        """At period end: ``subscriptions.update(cancel_at_period_end=true,
        cancellation_details)``. Now: ``subscriptions.cancel(prorate=…, cancellation_details)``
        (``create_prorations`` leaves a pending credit for the unused time). A pending schedule
        is released first."""
        feedback = (reason or "").strip() or None
        note = (comment or "").strip() or None
        if feedback is not None and feedback not in CANCELLATION_REASONS:
            raise GatewayError(
                "Choose a reason from the list.", code="invalid_reason", field="reason"
            )
        if note is not None and len(note) > COMMENT_LIMIT:
            raise GatewayError(
                f"Use at most {COMMENT_LIMIT} characters.", code="too_long", field="comment"
            )
        details = {k: v for k, v in (("feedback", feedback), ("comment", note)) if v is not None}

        async def work(keys: Keys) -> Outcome:
            sub = await self._live_subscription(subscription_id, "canceled")
            outcome = Outcome(sub.customer, result={"subscription": subscription_id})
            await self._release_schedule(sub.schedule, keys, outcome.batch)
            if at_period_end:
                params: dict[str, Any] = {"cancel_at_period_end": True}
                if details:
                    params["cancellation_details"] = details
                outcome.batch.add(await self._update_subscription(subscription_id, params, keys))
                return outcome
            params = {
                "prorate": proration_behavior == "create_prorations",
                "invoice_now": False,
                "expand": SUBSCRIPTION_EXPAND,
            }
            if details:
                params["cancellation_details"] = details
            try:
                canceled = await self.client.v1.subscriptions.cancel_async(
                    subscription_id, params, keys("cancel")
                )
                fresh = await self._fresh_subscription(canceled)
            except stripe.InvalidRequestError:
                # A retry after a timeout: the first attempt may have canceled it already.
                fresh = await stripe_sync.fetch_subscription(self.client, subscription_id)
                if fresh.get("status") not in ENDED:
                    raise
            outcome.batch.add(fresh)
            return outcome

        await self._intent(
            idempotency_key,
            "cancel_subscription",
            {
                "subscription": subscription_id,
                "at_period_end": at_period_end,
                "proration_behavior": proration_behavior,
                "reason": feedback,
                "comment": note,
            },
            "Your subscription couldn't be canceled.",
            work,
        )

    async def renew_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        """``subscriptions.update(cancel_at_period_end=false)`` (or ``cancel_at=""`` when a
        cancellation date was set)."""

        async def work(keys: Keys) -> Outcome:
            sub = await self._live_subscription(subscription_id, "renewed")
            params: dict[str, Any] = (
                {"cancel_at": ""}
                if sub.cancel_at is not None and not sub.cancel_at_period_end
                else {"cancel_at_period_end": False}
            )
            outcome = Outcome(sub.customer, result={"subscription": subscription_id})
            outcome.batch.add(await self._update_subscription(subscription_id, params, keys))
            return outcome

        await self._intent(
            idempotency_key,
            "renew_subscription",
            {"subscription": subscription_id},
            "Your subscription couldn't be renewed.",
            work,
        )

    async def apply_coupon(
        self, subscription_id: str, coupon_id: str, *, idempotency_key: str
    ) -> None:
        """``subscriptions.update(discounts=[{coupon}])`` (replaces the current discount)."""

        async def work(keys: Keys) -> Outcome:
            sub = await self._live_subscription(subscription_id, "discounted")
            outcome = Outcome(sub.customer, result={"subscription": subscription_id})
            params = {"discounts": [{"coupon": coupon_id}]}
            outcome.batch.add(await self._update_subscription(subscription_id, params, keys))
            outcome.result["coupon"] = coupon_id
            return outcome

        await self._intent(
            idempotency_key,
            "apply_coupon",
            {"subscription": subscription_id, "coupon": coupon_id},
            "The offer couldn't be applied.",
            work,
            override=_coupon_error,
        )

    async def pause_subscription(
        self, subscription_id: str, *, resumes_at: datetime | None, idempotency_key: str
    ) -> None:
        """``subscriptions.update(pause_collection={behavior: void, resumes_at})``."""
        if resumes_at is not None and resumes_at <= datetime.now(UTC):
            raise GatewayError(
                "Choose a date in the future.", code="invalid_resumes_at", field="resumes_at"
            )

        async def work(keys: Keys) -> Outcome:
            sub = await self._live_subscription(subscription_id, "paused")
            pause: dict[str, Any] = {"behavior": "void"}
            if resumes_at is not None:
                pause["resumes_at"] = int(resumes_at.timestamp())
            outcome = Outcome(sub.customer, result={"subscription": subscription_id})
            outcome.batch.add(
                await self._update_subscription(subscription_id, {"pause_collection": pause}, keys)
            )
            return outcome

        await self._intent(
            idempotency_key,
            "pause_subscription",
            {"subscription": subscription_id, "resumes_at": resumes_at},
            "Your subscription couldn't be paused.",
            work,
        )

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        """``subscriptions.update(pause_collection="")``; a subscription in Stripe's ``paused``
        status (a trial that ended without a card) goes through ``subscriptions.resume``."""

        async def work(keys: Keys) -> Outcome:
            sub = await self._live_subscription(subscription_id, "resumed")
            outcome = Outcome(sub.customer, result={"subscription": subscription_id})
            if sub.status == "paused":
                resumed = await self.client.v1.subscriptions.resume_async(
                    subscription_id, {"expand": SUBSCRIPTION_EXPAND}, keys("resume")
                )
                outcome.batch.add(await self._fresh_subscription(resumed))
            else:
                outcome.batch.add(
                    await self._update_subscription(subscription_id, {"pause_collection": ""}, keys)
                )
            return outcome

        await self._intent(
            idempotency_key,
            "resume_subscription",
            {"subscription": subscription_id},
            "Your subscription couldn't be resumed.",
            work,
        )

    # --- payment methods ----

    async def _currency_of(self, customer_id: str) -> str:
        customer = (
            await Customer.select(Customer.currency).where(Customer.id == customer_id).first()
        )
        if customer and customer["currency"]:
            return customer["currency"]
        sub = (
            await Subscription.select(Subscription.currency)
            .where(Subscription.customer == customer_id)
            .order_by(Subscription.created, ascending=False)
            .first()
        )
        return sub["currency"] if sub else "usd"

    async def start_add_payment_method(
        self, customer_id: str, *, success_url: str, cancel_url: str, idempotency_key: str
    ) -> AddPaymentMethodStart:
        """``checkout.sessions.create(mode=setup, customer, currency, success_url, cancel_url)``:
        the customer types the card on Stripe's page. ``success_url`` gets
        ``session_id={CHECKOUT_SESSION_ID}`` unless it already carries the placeholder."""
        if "{CHECKOUT_SESSION_ID}" not in success_url:
            joiner = "&" if "?" in success_url else "?"
            success_url = f"{success_url}{joiner}session_id={{CHECKOUT_SESSION_ID}}"

        async def work(keys: Keys) -> Outcome:
            currency = await self._currency_of(customer_id)
            session = await self.client.v1.checkout.sessions.create_async(
                {
                    "mode": "setup",
                    "customer": customer_id,
                    "currency": currency,
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
                keys("session"),
            )
            return Outcome(customer_id, result={"redirect_url": session.url, "session": session.id})

        result = await self._intent(
            idempotency_key,
            "start_add_payment_method",
            {"customer": customer_id, "success_url": success_url, "cancel_url": cancel_url},
            "Adding a card couldn't be started.",
            work,
        )
        return AddPaymentMethodStart(redirect_url=result["redirect_url"])

    async def add_card(
        self, customer_id: str, card: CardInput, *, make_default: bool, idempotency_key: str
    ) -> str:
        raise GatewayError(
            "Cards are added on Stripe's secure page; Portico never handles card numbers.",
            code="not_supported",
        )

    async def complete_add_payment_method(
        self, customer_id: str, *, session_id: str, make_default: bool
    ) -> str:
        """``checkout.sessions.retrieve(expand=[setup_intent])``; the setup intent's payment
        method is attached if it is not yet (``payment_methods.attach``) and made the default
        when asked (``customers.update(invoice_settings.default_payment_method)``). Safe to
        repeat: the requests' idempotency keys derive from the session id."""
        keys = Keys(session_id, "complete_add_payment_method")
        not_found = GatewayError(
            "That card setup was not found. Please add the card again.", code="resource_missing"
        )
        async with guard("The card couldn't be added.", deadline=self.deadline):
            v1 = self.client.v1
            try:
                session = plain(
                    await v1.checkout.sessions.retrieve_async(
                        session_id, {"expand": ["setup_intent"]}
                    )
                )
            except stripe.InvalidRequestError as error:
                if is_missing(error):
                    raise not_found from None
                raise
            if ref(session.get("customer")) != customer_id or session.get("mode") != "setup":
                raise not_found
            intent = session.get("setup_intent")
            if session.get("status") != "complete" or not isinstance(intent, dict):
                raise GatewayError(
                    "Adding the card was not finished. Please try again.", code="setup_incomplete"
                )
            if intent.get("status") != "succeeded" or not intent.get("payment_method"):
                raise GatewayError(
                    "Adding the card was not finished. Please try again.", code="setup_incomplete"
                )
            pm_id = ref(intent["payment_method"]) or ""
            batch = Batch()
            pm = plain(await v1.payment_methods.retrieve_async(pm_id))
            owner = ref(pm.get("customer"))
            if owner is None:
                pm = plain(
                    await v1.payment_methods.attach_async(
                        pm_id, {"customer": customer_id}, keys("attach")
                    )
                )
            elif owner != customer_id:
                raise not_found
            batch.add(pm)
            if make_default:
                customer = await v1.customers.update_async(
                    customer_id,
                    {"invoice_settings": {"default_payment_method": pm_id}},
                    keys("default"),
                )
                batch.add(
                    plain(await v1.customers.retrieve_async(customer_id))
                    if replayed(customer)
                    else plain(customer)
                )
            await stripe_sync.complete(self.client, batch)
        await batch.commit()
        return pm_id

    async def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None:
        """``customers.update(invoice_settings={default_payment_method})``."""

        async def work(keys: Keys) -> Outcome:
            customer = await self.client.v1.customers.update_async(
                customer_id,
                {"invoice_settings": {"default_payment_method": payment_method_id}},
                keys("update"),
            )
            fresh = (
                plain(await self.client.v1.customers.retrieve_async(customer_id))
                if replayed(customer)
                else plain(customer)
            )
            outcome = Outcome(customer_id, result={"payment_method": payment_method_id})
            outcome.batch.add(fresh)
            return outcome

        await self._intent(
            idempotency_key,
            "set_default_payment_method",
            {"customer": customer_id, "payment_method": payment_method_id},
            "The default card couldn't be changed.",
            work,
            override=_payment_method_error,
        )

    async def detach_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None:
        """``payment_methods.detach``; then the customer and the subscriptions that named it as
        their default are re-fetched (Stripe clears those defaults)."""

        async def work(keys: Keys) -> Outcome:
            v1 = self.client.v1
            outcome = Outcome(customer_id, result={"payment_method": payment_method_id})
            try:
                pm = plain(
                    await v1.payment_methods.detach_async(payment_method_id, None, keys("detach"))
                )
            except stripe.InvalidRequestError as error:
                if is_missing(error):
                    raise
                pm = plain(await v1.payment_methods.retrieve_async(payment_method_id))
                if ref(pm.get("customer")) is not None:
                    raise
            outcome.batch.add(pm)
            outcome.batch.payment_method_detached(payment_method_id)
            outcome.batch.add(plain(await v1.customers.retrieve_async(customer_id)))
            affected = await Subscription.select(Subscription.id).where(
                (Subscription.customer == customer_id)
                & (Subscription.default_payment_method == payment_method_id)
            )
            subs = await stripe_sync.gather_limited(
                stripe_sync.fetch_subscription(self.client, row["id"]) for row in affected
            )
            outcome.batch.add_all(subs)
            return outcome

        await self._intent(
            idempotency_key,
            "detach_payment_method",
            {"customer": customer_id, "payment_method": payment_method_id},
            "The card couldn't be removed.",
            work,
            override=_payment_method_error,
        )

    # --- invoices ----

    async def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> PaymentResult:
        """``invoices.retrieve``: an open invoice is paid on Stripe's hosted invoice page
        (``redirect``); nothing changes on Stripe here, so no request needs the key."""
        async with guard("The invoice couldn't be paid.", deadline=self.deadline):
            invoice = plain(await self.client.v1.invoices.retrieve_async(invoice_id))
            batch = Batch()
            batch.add(invoice)
            await stripe_sync.complete(self.client, batch)
        await batch.commit()
        status = invoice.get("status")
        if status == "paid":
            return PaymentResult(status="paid")
        url = invoice.get("hosted_invoice_url")
        if status in ("open", "uncollectible") and url:
            return PaymentResult(status="redirect", redirect_url=url)
        raise GatewayError("This invoice can't be paid online.", code="invoice_not_payable")

    async def invoice_document(self, invoice_id: str, *, business_name: str) -> InvoiceDocument:
        """Stripe's ``invoice_pdf`` (from the mirror, else ``invoices.retrieve``)."""
        row = (
            await Invoice.select(Invoice.number, Invoice.invoice_pdf)
            .where(Invoice.id == invoice_id)
            .first()
        )
        number, url = (row["number"], row["invoice_pdf"]) if row else (None, None)
        if not url:
            async with guard("The invoice PDF couldn't be fetched.", deadline=self.deadline):
                invoice = plain(await self.client.v1.invoices.retrieve_async(invoice_id))
            number, url = invoice.get("number"), invoice.get("invoice_pdf")
        if not url:
            raise GatewayError("This invoice has no PDF yet.", code="no_document")
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in (number or invoice_id))
        return InvoiceDocument(filename=f"{safe}.pdf", url=url)

    # --- customer details ----

    @staticmethod
    def _clean_details(details: CustomerDetails) -> dict[str, str]:
        """Given fields, trimmed; country codes upper case and two letters."""
        values: dict[str, str] = {}
        for name in CustomerDetails.__struct_fields__:
            value = getattr(details, name)
            if value is None:
                continue
            value = value.strip()
            if name.endswith("_country") and value:
                value = value.upper()
                if len(value) != 2 or not value.isalpha():
                    raise GatewayError("Choose a country.", code="invalid_country", field=name)
            column = Customer._meta.get_column_by_name(name)
            limit = getattr(column, "length", None)
            if limit is not None and len(value) > limit:
                raise GatewayError(f"Use at most {limit} characters.", code="too_long", field=name)
            values[name] = value
        return values

    @staticmethod
    def _address(current: Customer, values: dict[str, str], prefix: str) -> dict[str, str] | str:
        keys = ("line1", "line2", "city", "state", "postal_code", "country")
        merged = {}
        for key in keys:
            name = f"{prefix}{key}"
            value = values[name] if name in values else (getattr(current, name) or "")
            if value:
                merged[key] = value
        return merged or ""

    async def update_customer(
        self, customer_id: str, details: CustomerDetails, *, idempotency_key: str
    ) -> None:
        """``customers.update(name, phone, address, shipping)``: ``None`` leaves a field, ``""``
        clears it; Stripe replaces whole addresses, so the given fields are merged with the
        mirror's current ones."""
        values = self._clean_details(details)

        async def work(keys: Keys) -> Outcome:
            current = await Customer.objects().where(Customer.id == customer_id).first()
            if current is None:
                raise GatewayError("Your account was not found.", code="resource_missing")
            params: dict[str, Any] = {}
            for name in ("name", "phone"):
                if name in values:
                    params[name] = values[name]
            if any(k.startswith("address_") for k in values):
                params["address"] = self._address(current, values, "address_")
            if any(k.startswith("shipping_") for k in values):
                address = self._address(current, values, "shipping_address_")
                name = values.get("shipping_name", current.shipping_name or "")
                phone = values.get("shipping_phone", current.shipping_phone or "")
                if not address and not name and not phone:
                    params["shipping"] = ""
                elif not name:
                    raise GatewayError(
                        "Enter the name for the shipping address.",
                        code="missing_name",
                        field="shipping_name",
                    )
                else:
                    shipping: dict[str, Any] = {"name": name, "address": address or {}}
                    if phone:
                        shipping["phone"] = phone
                    params["shipping"] = shipping
            outcome = Outcome(customer_id, result={"customer": customer_id})
            if not params:
                return outcome
            customer = await self.client.v1.customers.update_async(
                customer_id, params, keys("update")
            )
            outcome.batch.add(
                plain(await self.client.v1.customers.retrieve_async(customer_id))
                if replayed(customer)
                else plain(customer)
            )
            return outcome

        await self._intent(
            idempotency_key,
            "update_customer",
            {"customer": customer_id, "details": details},
            "Your details couldn't be saved.",
            work,
        )

    async def add_tax_id(
        self, customer_id: str, *, type: str, value: str, idempotency_key: str
    ) -> str:
        """``customers.tax_ids.create(type, value)``; returns the ``txi_`` id."""
        type_, value = type.strip().lower(), value.strip()
        if not type_:
            raise GatewayError("Choose a tax ID type.", code="invalid_tax_id_type", field="type")
        if not value:
            raise GatewayError("Enter a valid tax ID.", code="invalid_tax_id", field="value")

        async def work(keys: Keys) -> Outcome:
            tax_id = plain(
                await self.client.v1.customers.tax_ids.create_async(
                    customer_id, {"type": type_, "value": value}, keys("create")
                )
            )
            outcome = Outcome(customer_id, result={"tax_id": tax_id["id"]})
            outcome.batch.add(tax_id)
            return outcome

        result = await self._intent(
            idempotency_key,
            "add_tax_id",
            {"customer": customer_id, "type": type_, "value": value},
            "The tax ID couldn't be added.",
            work,
            override=_tax_id_error,
        )
        return result["tax_id"]

    async def delete_tax_id(self, customer_id: str, tax_id: str, *, idempotency_key: str) -> None:
        """``customers.tax_ids.delete``; one that is already gone counts as deleted."""

        async def work(keys: Keys) -> Outcome:
            outcome = Outcome(customer_id, result={"tax_id": tax_id})
            try:
                await self.client.v1.customers.tax_ids.delete_async(customer_id, tax_id)
            except stripe.InvalidRequestError as error:
                if not is_missing(error):
                    raise
            outcome.batch.tax_id_deleted(tax_id)
            return outcome

        await self._intent(
            idempotency_key,
            "delete_tax_id",
            {"customer": customer_id, "tax_id": tax_id},
            "The tax ID couldn't be removed.",
            work,
        )

    # --- mirror freshness ----

    async def refresh_customer(self, customer_id: str) -> None:
        """Re-fetch the customer, all their subscriptions, recent invoices, payment methods and
        tax ids, and write them in one transaction (detached cards and deleted tax ids too)."""
        async with guard("Your billing details couldn't be refreshed.", deadline=self.deadline):
            batch = await stripe_sync.customer_batch(self.client, customer_id)
        await batch.commit()

    async def discover_customers(self, email: str) -> list[str]:
        """``customers.list(email=…)`` (as typed and lower case) with each customer's
        subscriptions, mirrored; returns their ids, newest first. For sign-in when the mirror
        has no customer with that email."""
        async with guard("Your account couldn't be looked up.", deadline=self.deadline):
            batch, ids = await stripe_sync.discover_batch(self.client, email)
        await batch.commit()
        return ids
