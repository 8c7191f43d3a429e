"""Stripe-shaped API errors.

Every failure the fake server reports is a :class:`StripeError`, rendered as Stripe renders
errors: ``{"error": {"type": ..., "code": ..., "message": ..., "param": ...}}`` with the
matching HTTP status (400 invalid request, 401 authentication, 402 card error, 404 missing
resource, 409 idempotency conflicts, 429 rate limit, 500 API error).

A handler that fails *after* it changed state on purpose (a declined payment attempt bumps
``attempt_count`` on the invoice, exactly as on Stripe) raises the error with
``persist=True`` so the dispatcher keeps those changes instead of rolling them back.
"""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/{code}"


class StripeError(Exception):
    """An error the server answers with; ``body()`` is the JSON payload."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
        persist: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = dict(headers or {})
        self.persist = persist
        self.extra = dict(extra or {})

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_URL.format(code=self.code.replace("_", "-"))
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if request_id:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}?t=0"
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """400 ``invalid_request_error``."""
    return StripeError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def no_such(label: str, object_id: str, param: str = "id", status: int = 404) -> StripeError:
    """``resource_missing``: 404 for the object in the URL, 400 for one named in a parameter."""
    return StripeError(
        status, f"No such {label}: '{object_id}'", param=param, code="resource_missing"
    )


def card_declined(
    message: str = "Your card was declined.",
    decline_code: str = "generic_decline",
    *,
    persist: bool = False,
    payment_method: str | None = None,
) -> StripeError:
    extra: dict[str, Any] = {}
    if payment_method:
        extra["payment_method"] = {"id": payment_method, "object": "payment_method"}
    return StripeError(
        402,
        message,
        type="card_error",
        code="card_declined",
        param="",
        decline_code=decline_code,
        persist=persist,
        extra=extra,
    )


def no_payment_method(*, persist: bool = False) -> StripeError:
    """What Stripe answers when an invoice is paid for a customer without a usable card."""
    return StripeError(
        402,
        "Cannot charge a customer that has no active card",
        type="card_error",
        code="missing",
        param="card",
        persist=persist,
    )
