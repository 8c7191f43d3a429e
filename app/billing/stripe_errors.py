"""How Stripe's refusals of particular actions read to the customer.

``stripe_client.translate`` maps SDK errors in general (card errors, invalid requests,
unreachable); these ``override`` hooks, passed to an action's guard, catch the refusals that
deserve their own message (and the form field they are about) first.
"""

from __future__ import annotations

import stripe

from app.billing.gateway import GatewayError, InvalidPromotionCode
from app.billing.stripe_client import is_missing

INVALID_PROMOTION = "That promotion code is not valid."
OFFER_GONE = "This offer is no longer available."


def promotion_error(error: stripe.StripeError) -> GatewayError | None:
    param = getattr(error, "param", None) or ""
    if isinstance(error, stripe.InvalidRequestError) and (
        "promotion_code" in param or error.code in ("coupon_expired", "promotion_code_invalid")
    ):
        return InvalidPromotionCode(INVALID_PROMOTION)
    return None


def coupon_error(error: stripe.StripeError) -> GatewayError | None:
    param = getattr(error, "param", None) or ""
    if isinstance(error, stripe.InvalidRequestError) and (
        param.startswith("discounts") or error.code == "coupon_expired"
    ):
        return GatewayError(OFFER_GONE, code="coupon_invalid")
    return None


def tax_id_error(error: stripe.StripeError) -> GatewayError | None:
    param = getattr(error, "param", None) or ""
    if not isinstance(error, stripe.InvalidRequestError):
        return None
    if error.code == "tax_id_invalid" or param == "value":
        return GatewayError("Enter a valid tax ID.", code="invalid_tax_id", field="value")
    if param == "type":
        return GatewayError("Choose a tax ID type.", code="invalid_tax_id_type", field="type")
    return None


def payment_method_error(error: stripe.StripeError) -> GatewayError | None:
    if isinstance(error, stripe.InvalidRequestError) and (
        is_missing(error) or "default_payment_method" in (getattr(error, "param", None) or "")
    ):
        return GatewayError(
            "That payment method is no longer on your account.", code="resource_missing"
        )
    return None
