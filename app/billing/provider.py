"""Choosing the billing gateway from the settings."""

from __future__ import annotations

from app.billing.gateway import BillingGateway
from app.settings import Settings


def make_gateway(settings: Settings) -> BillingGateway:
    if settings.billing == "stripe":
        from app.billing.stripe_gateway import StripeGateway  # the Stripe backend

        return StripeGateway(settings)
    from app.billing.sandbox import SandboxGateway

    return SandboxGateway(settings)
