"""The Stripe gateway: every ``BillingGateway`` write as Stripe API calls, mirrored at once.

``StripeGateway`` is the table of contents; each method hands over to the module that holds it:

| module | actions |
| --- | --- |
| ``stripe_change_preview`` | ``preview_subscription_change`` |
| ``stripe_plan_changes`` | ``change_subscription`` (now, or scheduled at period end) |
| ``stripe_subscription_lifecycle`` | cancel, renew, retention coupon, pause, resume |
| ``stripe_payment_methods`` | add a card through Checkout, default card, remove a card |
| ``stripe_invoices`` | pay on the hosted invoice page, the PDF |
| ``stripe_customers`` | billing details, tax ids, refresh at sign-in, discovery by email |

Every write runs in the frame of ``stripe_actions.StripeActions.intent`` (one idempotency record
per customer intent, Stripe idempotency keys per request, the deadline of one action, one write
transaction for the mirror). Errors (``stripe_client.translate``, ``stripe_errors``): card
errors → ``CardDeclined`` with Stripe's message, invalid requests → ``GatewayError`` saying what
failed and why, unreachable / 5xx / rate limited / too slow → ``GatewayUnavailable`` (which also
marks ``health`` degraded: see ``app.billing.health``).

The gateway also holds what the process keeps for Stripe mode: the HTTP connection, the
``BillingHealth`` record and the background ``SyncRunner`` (``app.billing.stripe_sync``), all
closed by ``aclose()`` at shutdown. Each action's docstring names the Stripe calls it makes.
"""

from __future__ import annotations

from datetime import datetime

import stripe

from app.billing import (
    stripe_change_preview,
    stripe_customers,
    stripe_invoices,
    stripe_payment_methods,
    stripe_plan_changes,
    stripe_subscription_lifecycle,
)
from app.billing.gateway import (
    AddPaymentMethodStart,
    CancelProration,
    CardInput,
    ChangePreview,
    CustomerDetails,
    InvoiceDocument,
    PaymentResult,
    ProrationBehavior,
    TrialUpdateBehavior,
)
from app.billing.health import BillingHealth
from app.billing.stripe_actions import StripeActions
from app.billing.stripe_client import (
    DEADLINE,
    MAX_NETWORK_RETRIES,
    REQUEST_TIMEOUT,
    StripeConnection,
)
from app.billing.stripe_sync import SyncRunner
from app.settings import Settings


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
        self.health = BillingHealth()
        self.actions = StripeActions(self.connection, deadline=deadline, health=self.health)
        self.syncs = SyncRunner(self.connection)

    @property
    def client(self) -> stripe.StripeClient:
        return self.connection.client

    async def aclose(self) -> None:
        """Stop a running sync and close the HTTP connections (app shutdown)."""
        await self.syncs.stop()
        await self.connection.aclose()

    # -- subscriptions: changes -------------------------------------------------------------
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
        return await stripe_change_preview.preview_subscription_change(
            self.actions,
            subscription_id,
            price_id=price_id,
            quantity=quantity,
            proration_behavior=proration_behavior,
            schedule_at_period_end=schedule_at_period_end,
            trial_update_behavior=trial_update_behavior,
            promotion_code=promotion_code,
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
        await stripe_plan_changes.change_subscription(
            self.actions,
            subscription_id,
            price_id=price_id,
            quantity=quantity,
            proration_behavior=proration_behavior,
            schedule_at_period_end=schedule_at_period_end,
            trial_update_behavior=trial_update_behavior,
            promotion_code=promotion_code,
            idempotency_key=idempotency_key,
        )

    # -- subscriptions: lifecycle -----------------------------------------------------------
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
        await stripe_subscription_lifecycle.cancel_subscription(
            self.actions,
            subscription_id,
            at_period_end=at_period_end,
            proration_behavior=proration_behavior,
            reason=reason,
            comment=comment,
            idempotency_key=idempotency_key,
        )

    async def renew_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        await stripe_subscription_lifecycle.renew_subscription(
            self.actions, subscription_id, idempotency_key=idempotency_key
        )

    async def apply_coupon(
        self, subscription_id: str, coupon_id: str, *, idempotency_key: str
    ) -> None:
        await stripe_subscription_lifecycle.apply_coupon(
            self.actions, subscription_id, coupon_id, idempotency_key=idempotency_key
        )

    async def pause_subscription(
        self, subscription_id: str, *, resumes_at: datetime | None, idempotency_key: str
    ) -> None:
        await stripe_subscription_lifecycle.pause_subscription(
            self.actions, subscription_id, resumes_at=resumes_at, idempotency_key=idempotency_key
        )

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        await stripe_subscription_lifecycle.resume_subscription(
            self.actions, subscription_id, idempotency_key=idempotency_key
        )

    # -- payment methods --------------------------------------------------------------------
    async def start_add_payment_method(
        self, customer_id: str, *, success_url: str, cancel_url: str, idempotency_key: str
    ) -> AddPaymentMethodStart:
        return await stripe_payment_methods.start_add_payment_method(
            self.actions,
            customer_id,
            success_url=success_url,
            cancel_url=cancel_url,
            idempotency_key=idempotency_key,
        )

    async def add_card(
        self, customer_id: str, card: CardInput, *, make_default: bool, idempotency_key: str
    ) -> str:
        return await stripe_payment_methods.add_card(
            self.actions,
            customer_id,
            card,
            make_default=make_default,
            idempotency_key=idempotency_key,
        )

    async def complete_add_payment_method(
        self, customer_id: str, *, session_id: str, make_default: bool
    ) -> str:
        return await stripe_payment_methods.complete_add_payment_method(
            self.actions, customer_id, session_id=session_id, make_default=make_default
        )

    async def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None:
        await stripe_payment_methods.set_default_payment_method(
            self.actions, customer_id, payment_method_id, idempotency_key=idempotency_key
        )

    async def detach_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None:
        await stripe_payment_methods.detach_payment_method(
            self.actions, customer_id, payment_method_id, idempotency_key=idempotency_key
        )

    # -- invoices ---------------------------------------------------------------------------
    async def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> PaymentResult:
        return await stripe_invoices.pay_invoice(
            self.actions, invoice_id, idempotency_key=idempotency_key
        )

    async def invoice_document(self, invoice_id: str, *, business_name: str) -> InvoiceDocument:
        return await stripe_invoices.invoice_document(
            self.actions, invoice_id, business_name=business_name
        )

    # -- customer details -------------------------------------------------------------------
    async def update_customer(
        self, customer_id: str, details: CustomerDetails, *, idempotency_key: str
    ) -> None:
        await stripe_customers.update_customer(
            self.actions, customer_id, details, idempotency_key=idempotency_key
        )

    async def add_tax_id(
        self, customer_id: str, *, type: str, value: str, idempotency_key: str
    ) -> str:
        return await stripe_customers.add_tax_id(
            self.actions, customer_id, type=type, value=value, idempotency_key=idempotency_key
        )

    async def delete_tax_id(self, customer_id: str, tax_id: str, *, idempotency_key: str) -> None:
        await stripe_customers.delete_tax_id(
            self.actions, customer_id, tax_id, idempotency_key=idempotency_key
        )

    # -- mirror freshness -------------------------------------------------------------------
    async def refresh_customer(self, customer_id: str) -> None:
        await stripe_customers.refresh_customer(self.actions, customer_id)

    async def discover_customers(self, email: str) -> list[str]:
        return await stripe_customers.discover_customers(self.actions, email)
