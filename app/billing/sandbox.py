"""The sandbox gateway: Stripe's billing semantics applied to the local mirror tables.

Every write is one call of ``idempotency.run``: one write transaction that checks the idempotency
key, does the work and stores the result, so a double submit changes billing once and a failure
leaves nothing half-written. Ids are trusted (the portal services looked them up through the
signed-in customer); the sandbox only checks what Stripe itself would refuse.

Where the work lives:
- ``sandbox_lifecycle``: cancel, renew, retention coupon, pause, resume;
- ``sandbox_changes``: plan/quantity changes, prorations, schedules, promotion codes (+ previews);
- ``sandbox_customers``: cards (``test_cards``), default payment method, details, tax ids;
- ``sandbox_invoices``: paying invoices, invoice PDFs (``invoice_pdf``);
- ``sandbox_store``: ids, loading, invoice creation and charges; ``proration``: the arithmetic.

Not modelled (there is no billing clock in the sandbox): renewals at period end, applying a
schedule's next phase, ending a trial or a cancel-at-period-end when its time comes, and Stripe's
customer balance (a net credit is kept as a pending invoice item instead).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app import clock
from app.billing import idempotency, sandbox_customers, sandbox_invoices, test_cards
from app.billing import sandbox_changes as changes
from app.billing import sandbox_lifecycle as lifecycle
from app.billing import sandbox_store as store
from app.billing.gateway import (
    AddPaymentMethodStart,
    CancelProration,
    CardInput,
    ChangePreview,
    CustomerDetails,
    GatewayError,
    InvoiceDocument,
    PaymentResult,
    ProrationBehavior,
    TrialUpdateBehavior,
)
from app.settings import Settings


class SandboxGateway:
    """``BillingGateway`` over the local tables (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- subscriptions: changes ------------------------------------------------------------------

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
        """What ``change_subscription`` with the same arguments would do now (read only)."""
        request = changes.ChangeRequest(
            price_id,
            quantity,
            proration_behavior,
            schedule_at_period_end,
            trial_update_behavior,
            promotion_code,
        )
        now = clock.now()
        context = await changes.load(subscription_id, request, now, lock=False)
        return changes.preview(context, changes.plan(context, request, now))

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
        request = changes.ChangeRequest(
            price_id,
            quantity,
            proration_behavior,
            schedule_at_period_end,
            trial_update_behavior,
            (promotion_code or "").strip() or None,
        )

        async def work() -> dict[str, Any]:
            now = clock.now()
            context = await changes.load(subscription_id, request, now, lock=True)
            result = changes.plan(context, request, now)
            await changes.apply(context, request, result, now)
            return {"subscription": subscription_id, "kind": result.kind}

        await self._subscription_call(
            idempotency_key,
            "change_subscription",
            subscription_id,
            work,
            price_id=price_id,
            quantity=quantity,
            proration_behavior=proration_behavior,
            schedule_at_period_end=schedule_at_period_end,
            trial_update_behavior=trial_update_behavior,
            promotion_code=request.promotion_code,
        )

    # --- subscriptions: lifecycle (see ``sandbox_lifecycle``) ----------------------------------

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
        """At period end (``cancel_at_period_end``, the status stays) or immediately
        (``canceled``; ``create_prorations`` credits the unused time as a pending item). The
        reason code and comment go to ``cancellation_details``; a pending schedule is
        released."""
        feedback, note = lifecycle.cancellation_details(reason, comment)
        await self._subscription_call(
            idempotency_key,
            "cancel_subscription",
            subscription_id,
            lambda: lifecycle.cancel(
                subscription_id,
                at_period_end=at_period_end,
                proration_behavior=proration_behavior,
                feedback=feedback,
                comment=note,
            ),
            at_period_end=at_period_end,
            proration_behavior=proration_behavior,
            reason=feedback,
            comment=note,
        )

    async def renew_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        """Undo a cancellation scheduled for the period end (only while not ended)."""
        await self._subscription_call(
            idempotency_key,
            "renew_subscription",
            subscription_id,
            lambda: lifecycle.renew(subscription_id),
        )

    async def apply_coupon(
        self, subscription_id: str, coupon_id: str, *, idempotency_key: str
    ) -> None:
        """Put a valid coupon on the subscription (the retention offer)."""
        await self._subscription_call(
            idempotency_key,
            "apply_coupon",
            subscription_id,
            lambda: lifecycle.apply_coupon(subscription_id, coupon_id),
            coupon=coupon_id,
        )

    async def pause_subscription(
        self, subscription_id: str, *, resumes_at: datetime | None, idempotency_key: str
    ) -> None:
        """``pause_collection = {behavior: void, resumes_at}``; the status does not change."""
        await self._subscription_call(
            idempotency_key,
            "pause_subscription",
            subscription_id,
            lambda: lifecycle.pause(subscription_id, resumes_at),
            resumes_at=resumes_at,
        )

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        await self._subscription_call(
            idempotency_key,
            "resume_subscription",
            subscription_id,
            lambda: lifecycle.resume(subscription_id),
        )

    async def _subscription_call(
        self, key: str, action: str, subscription_id: str, work, **arguments: Any
    ) -> dict[str, Any]:
        return await idempotency.run(
            key,
            action=action,
            arguments={"subscription": subscription_id, **arguments},
            customer=lambda: store.customer_of_subscription(subscription_id),
            work=work,
        )

    # --- payment methods -------------------------------------------------------------------------

    async def start_add_payment_method(
        self, customer_id: str, *, success_url: str, cancel_url: str, idempotency_key: str
    ) -> AddPaymentMethodStart:
        """The sandbox uses Portico's own card form: no redirect."""
        return AddPaymentMethodStart(redirect_url=None)

    async def add_card(
        self, customer_id: str, card: CardInput, *, make_default: bool, idempotency_key: str
    ) -> str:
        """Attach one of Stripe's test cards (``test_cards``). The idempotency hash covers the
        card's brand, last 4 digits, expiry and name, never the number or CVC."""
        digits = "".join(ch for ch in card.number if ch.isdigit())
        known = test_cards.TEST_CARDS.get(digits)
        result = await idempotency.run(
            idempotency_key,
            action="add_card",
            customer=customer_id,
            arguments={
                "customer": customer_id,
                "brand": known.brand if known else None,
                "last4": digits[-4:],
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "name": card.name,
                "make_default": make_default,
            },
            work=lambda: sandbox_customers.add_card(customer_id, card, make_default=make_default),
        )
        return result["payment_method"]

    async def complete_add_payment_method(
        self, customer_id: str, *, session_id: str, make_default: bool
    ) -> str:
        raise GatewayError(
            "The sandbox adds cards with its own form; there is no Checkout session to complete.",
            code="not_supported",
        )

    async def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None:
        await idempotency.run(
            idempotency_key,
            action="set_default_payment_method",
            customer=customer_id,
            arguments={"customer": customer_id, "payment_method": payment_method_id},
            work=lambda: sandbox_customers.set_default_payment_method(
                customer_id, payment_method_id
            ),
        )

    async def detach_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None:
        await idempotency.run(
            idempotency_key,
            action="detach_payment_method",
            customer=customer_id,
            arguments={"customer": customer_id, "payment_method": payment_method_id},
            work=lambda: sandbox_customers.detach_payment_method(customer_id, payment_method_id),
        )

    # --- invoices --------------------------------------------------------------------------------

    async def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> PaymentResult:
        await idempotency.run(
            idempotency_key,
            action="pay_invoice",
            arguments={"invoice": invoice_id},
            customer=lambda: store.customer_of_invoice(invoice_id),
            work=lambda: sandbox_invoices.pay_invoice(invoice_id),
        )
        return PaymentResult(status="paid")

    async def invoice_document(self, invoice_id: str, *, business_name: str) -> InvoiceDocument:
        return await sandbox_invoices.invoice_document(invoice_id, business_name)

    # --- customer details ------------------------------------------------------------------------

    async def update_customer(
        self, customer_id: str, details: CustomerDetails, *, idempotency_key: str
    ) -> None:
        """``None`` leaves a field as it is; ``""`` clears it."""
        await idempotency.run(
            idempotency_key,
            action="update_customer",
            customer=customer_id,
            arguments={"customer": customer_id, "details": details},
            work=lambda: sandbox_customers.update_customer(customer_id, details),
        )

    async def add_tax_id(
        self, customer_id: str, *, type: str, value: str, idempotency_key: str
    ) -> str:
        """A ``txi_`` id; the country follows from the type (EU VAT: from the number's prefix)
        and verification starts ``pending``. Format checks are the portal service's."""
        result = await idempotency.run(
            idempotency_key,
            action="add_tax_id",
            customer=customer_id,
            arguments={"customer": customer_id, "type": type, "value": value},
            work=lambda: sandbox_customers.add_tax_id(customer_id, type, value),
        )
        return result["tax_id"]

    async def delete_tax_id(self, customer_id: str, tax_id: str, *, idempotency_key: str) -> None:
        await idempotency.run(
            idempotency_key,
            action="delete_tax_id",
            customer=customer_id,
            arguments={"customer": customer_id, "tax_id": tax_id},
            work=lambda: sandbox_customers.delete_tax_id(customer_id, tax_id),
        )

    # --- mirror freshness ------------------------------------------------------------------------

    async def refresh_customer(self, customer_id: str) -> None:
        """The sandbox's tables are the source of truth: nothing to refresh."""
        return None

    async def discover_customers(self, email: str) -> list[str]:
        """Every sandbox customer is already in the tables: nothing to discover."""
        return []
