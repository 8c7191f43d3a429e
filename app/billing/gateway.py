"""The one way billing changes: ``BillingGateway``.

Pages read the local mirror (``app.billing.queries``); every write goes through a gateway. The
sandbox gateway (``app.billing.sandbox``) applies Stripe's semantics to the local tables; the Stripe
gateway calls Stripe and upserts what Stripe returns into the mirror in the same request. Either
way, when a method returns, the mirror shows the change.

Rules every implementation keeps:
- Ids are trusted: callers (the portal services) have already looked every object up through the
  signed-in customer. Gateways do not re-check ownership; services must.
- ``idempotency_key`` is the customer's intent (the one-time key of the submitted form): the same
  key with the same arguments changes billing at most once and returns the same result; the same
  key with different arguments raises ``IdempotencyConflict``.
- Failures raise ``GatewayError`` (or a subclass) with a message fit to show the customer; the
  mirror is left as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

import msgspec

ProrationBehavior = Literal["none", "create_prorations", "always_invoice"]
CancelProration = Literal["none", "create_prorations"]
TrialUpdateBehavior = Literal["end_trial", "continue_trial"]


# -- errors --------------------------------------------------------------------------------------
class GatewayError(Exception):
    """A billing action failed; ``message`` is safe and useful to show the customer."""

    def __init__(self, message: str, *, code: str = "gateway_error", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field  # the form field the error is about, when there is one


class CardDeclined(GatewayError):
    def __init__(self, message: str, *, code: str = "card_declined", field: str | None = None):
        super().__init__(message, code=code, field=field)


class InvalidPromotionCode(GatewayError):
    def __init__(self, message: str):
        super().__init__(message, code="invalid_promotion_code", field="promotion_code")


class IdempotencyConflict(GatewayError):
    def __init__(self, message: str = "This form was already used for a different change."):
        super().__init__(message, code="idempotency_conflict")


class GatewayUnavailable(GatewayError):
    """The billing provider did not answer in time or failed; nothing was changed locally."""

    def __init__(self, message: str):
        super().__init__(message, code="unavailable")


# -- values ----------------------------------------------------------------------------------------
class PreviewLine(msgspec.Struct, frozen=True, kw_only=True):
    description: str
    amount: int  # minor units; negative for credits
    proration: bool = False
    period_start: datetime | None = None
    period_end: datetime | None = None


class ChangePreview(msgspec.Struct, frozen=True, kw_only=True):
    """What a plan/quantity change will do, before the customer confirms it."""

    currency: str
    # Lines that will be charged or credited because of the change (prorations, or a new period
    # when the billing interval changes).
    lines: list[PreviewLine]
    # Charged right away (an invoice is created and paid now); 0 when prorations wait for the
    # next invoice or nothing is due.
    amount_due_now: int
    # The next regular invoice after the change.
    next_invoice_date: datetime | None
    next_invoice_amount: int | None
    # True when the change waits for the end of the current period (a scheduled downgrade).
    scheduled_at_period_end: bool = False
    effective_date: datetime | None = None
    discount_description: str | None = None


class CustomerDetails(msgspec.Struct, frozen=True, kw_only=True):
    """Fields a customer may change (the configuration decides which are offered). ``None`` means
    "leave as it is"; an empty string clears the field."""

    name: str | None = None
    phone: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    address_city: str | None = None
    address_state: str | None = None
    address_postal_code: str | None = None
    address_country: str | None = None
    shipping_name: str | None = None
    shipping_phone: str | None = None
    shipping_address_line1: str | None = None
    shipping_address_line2: str | None = None
    shipping_address_city: str | None = None
    shipping_address_state: str | None = None
    shipping_address_postal_code: str | None = None
    shipping_address_country: str | None = None


class CardInput(msgspec.Struct, frozen=True, kw_only=True):
    """Card data typed into the sandbox's own form. Never stored or logged whole: the sandbox keeps
    brand, last 4 digits and expiry only."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    name: str = ""

    def __repr__(self) -> str:  # keep card data out of logs and tracebacks
        return f"CardInput(last4={self.number[-4:]!r}, exp={self.exp_month}/{self.exp_year})"


class AddPaymentMethodStart(msgspec.Struct, frozen=True, kw_only=True):
    """How adding a payment method begins: the sandbox shows Portico's own card form
    (``redirect_url`` is None); Stripe sends the customer to a hosted Checkout page."""

    redirect_url: str | None = None


class PaymentResult(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["paid", "redirect"]
    redirect_url: str | None = None  # Stripe: the hosted invoice page


class InvoiceDocument(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice PDF: bytes rendered locally (sandbox) or the provider's URL (Stripe)."""

    filename: str
    content: bytes | None = None
    url: str | None = None


# -- the protocol ----------------------------------------------------------------------------------
class BillingGateway(Protocol):
    """Billing writes. See the module docstring for the rules every implementation keeps."""

    # Subscriptions ------------------------------------------------------------------------------
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
    ) -> ChangePreview: ...

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
    ) -> None: ...

    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        at_period_end: bool,
        proration_behavior: CancelProration,
        reason: str | None,
        comment: str | None,
        idempotency_key: str,
    ) -> None: ...

    async def renew_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        """Undo a cancellation scheduled for the period end."""
        ...

    async def apply_coupon(
        self, subscription_id: str, coupon_id: str, *, idempotency_key: str
    ) -> None:
        """The retention offer: put a coupon on the subscription."""
        ...

    async def pause_subscription(
        self, subscription_id: str, *, resumes_at: datetime | None, idempotency_key: str
    ) -> None:
        """Pause collection (``pause_collection.behavior = void``) until ``resumes_at`` or
        until resumed."""
        ...

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> None: ...

    # Payment methods ----------------------------------------------------------------------------
    async def start_add_payment_method(
        self, customer_id: str, *, success_url: str, cancel_url: str, idempotency_key: str
    ) -> AddPaymentMethodStart: ...

    async def add_card(
        self, customer_id: str, card: CardInput, *, make_default: bool, idempotency_key: str
    ) -> str:
        """Sandbox only: attach a test card typed into Portico's form; returns the ``pm_`` id.
        Raises ``CardDeclined`` for declined test numbers."""
        ...

    async def complete_add_payment_method(
        self, customer_id: str, *, session_id: str, make_default: bool
    ) -> str:
        """Stripe only: after the Checkout round trip, attach and (optionally) make default."""
        ...

    async def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None: ...

    async def detach_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> None: ...

    # Invoices -----------------------------------------------------------------------------------
    async def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> PaymentResult: ...

    async def invoice_document(self, invoice_id: str, *, business_name: str) -> InvoiceDocument: ...

    # Customer details ---------------------------------------------------------------------------
    async def update_customer(
        self, customer_id: str, details: CustomerDetails, *, idempotency_key: str
    ) -> None: ...

    async def add_tax_id(
        self, customer_id: str, *, type: str, value: str, idempotency_key: str
    ) -> str: ...

    async def delete_tax_id(
        self, customer_id: str, tax_id: str, *, idempotency_key: str
    ) -> None: ...

    # Mirror freshness ---------------------------------------------------------------------------
    async def refresh_customer(self, customer_id: str) -> None:
        """Bring the mirror up to date for one customer (sandbox: nothing to do)."""
        ...

    async def discover_customers(self, email: str) -> list[str]:
        """Ask the provider for customers with this email that the mirror does not have yet, and
        mirror them; returns their ids (sandbox: the tables are the truth, so none)."""
        ...
