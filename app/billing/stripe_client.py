"""The Stripe SDK client Portico uses, and how its failures become ``GatewayError``s.

- ``HTTPXClient``: ``stripe.HTTPXClient`` sending form bodies with ``content=``. stripe 16.1
  passes the encoded body as ``data="a=1&b=2"``, which httpx 0.28 deprecates with a warning on
  every POST (under warnings-as-errors the SDK reports it as a connection error).
- ``StripeConnection``: a ``stripe.StripeClient`` (async methods, ``REQUEST_TIMEOUT`` per HTTP
  request, ``MAX_NETWORK_RETRIES`` retries with Stripe's backoff) created on first use and closed
  with ``aclose()``.
- ``guard(failure)``: the deadline of one action (``DEADLINE``: everything it sends to Stripe,
  retries included, so a slow or hanging Stripe fails the action within 15 s) and the mapping of
  SDK errors: card errors → ``CardDeclined`` (Stripe's message), invalid requests →
  ``GatewayError`` (``failure`` plus Stripe's explanation), timeouts, connection errors,
  rate limits and 5xx → ``GatewayUnavailable(UNAVAILABLE)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import stripe

from app.billing.gateway import (
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
)

log = logging.getLogger("portico.stripe")

REQUEST_TIMEOUT = 10.0  # seconds for one HTTP request to Stripe
DEADLINE = 12.0  # seconds for all the requests of one action, retries included
MAX_NETWORK_RETRIES = 2
UNAVAILABLE = (
    "Billing is not reachable right now. Nothing was changed. Please try again in a moment."
)
MISCONFIGURED = "Billing is not set up correctly. Please contact us."


class HTTPXClient(stripe.HTTPXClient):
    """``stripe.HTTPXClient`` that uploads the form body with ``content=`` (bytes)."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if isinstance(data, str):
            kwargs["content"] = data.encode("utf-8")
        elif isinstance(data, bytes):
            kwargs["content"] = data
        elif data:
            kwargs["data"] = data
        return [args, kwargs]


class StripeConnection:
    """One ``stripe.StripeClient`` for the process (or a command), created on first use."""

    def __init__(
        self,
        api_key: str,
        api_base: str = "",
        *,
        timeout: float = REQUEST_TIMEOUT,
        max_network_retries: int = MAX_NETWORK_RETRIES,
    ) -> None:
        self.api_key = api_key
        self.api_base = api_base
        self.timeout = timeout
        self.max_network_retries = max_network_retries
        self._http: HTTPXClient | None = None
        self._client: stripe.StripeClient | None = None

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            if not self.api_key:
                raise GatewayError(MISCONFIGURED, code="misconfigured")
            self._http = HTTPXClient(timeout=self.timeout)
            self._client = stripe.StripeClient(
                self.api_key,
                base_addresses={"api": self.api_base} if self.api_base else None,
                http_client=self._http,
                max_network_retries=self.max_network_retries,
            )
        return self._client

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close_async()


def _is_missing(error: stripe.StripeError) -> bool:
    return isinstance(error, stripe.InvalidRequestError) and (
        error.code == "resource_missing" or error.http_status == 404
    )


def is_missing(error: BaseException) -> bool:
    """A 404 / ``resource_missing``: the object does not exist (any more) on Stripe."""
    return isinstance(error, stripe.StripeError) and _is_missing(error)


Override = Callable[[stripe.StripeError], GatewayError | None]


def translate(
    error: stripe.StripeError, failure: str, override: Override | None = None
) -> GatewayError:
    """The ``GatewayError`` for an SDK error; ``failure`` says what did not happen."""
    if override is not None:
        mapped = override(error)
        if mapped is not None:
            return mapped
    if isinstance(error, stripe.CardError):
        return CardDeclined(
            error.user_message or "Your card was declined.", code=error.code or "card_declined"
        )
    if isinstance(error, stripe.IdempotencyError) or (
        isinstance(error, stripe.InvalidRequestError)
        and (error.error is not None and error.error.type == "idempotency_error")
    ):
        return IdempotencyConflict()
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        log.error("Stripe refused the API key: %s", error.user_message)
        return GatewayError(MISCONFIGURED, code="misconfigured")
    if isinstance(error, stripe.RateLimitError | stripe.APIConnectionError | stripe.APIError):
        return GatewayUnavailable(UNAVAILABLE)
    if isinstance(error, stripe.InvalidRequestError):
        if error.http_status in (409, 429) or (error.http_status or 0) >= 500:
            return GatewayUnavailable(UNAVAILABLE)
        if _is_missing(error):
            return GatewayError(
                f"{failure} It no longer exists in billing; reload the page and try again.",
                code="resource_missing",
            )
        detail = (error.user_message or "").strip()
        message = f"{failure} {detail}" if detail else failure
        return GatewayError(message[:500], code=error.code or "invalid_request")
    log.warning("unexpected Stripe error: %r", error)
    return GatewayUnavailable(UNAVAILABLE)


@asynccontextmanager
async def guard(
    failure: str, *, deadline: float = DEADLINE, override: Override | None = None
) -> AsyncIterator[None]:
    """Run Stripe calls within ``deadline`` seconds and turn SDK errors into GatewayErrors."""
    try:
        async with asyncio.timeout(deadline):
            yield
    except TimeoutError:
        log.warning("Stripe did not answer within %.1f s", deadline)
        raise GatewayUnavailable(UNAVAILABLE) from None
    except stripe.StripeError as error:
        raise translate(error, failure, override) from error


def plain(obj: Any) -> dict[str, Any]:
    """A Stripe object (or dict) as a plain dict."""
    if obj is None:
        return {}
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj)


def replayed(obj: Any) -> bool:
    """True when Stripe answered with a stored response (``Idempotent-Replayed``): the object may
    be older than Stripe's current state."""
    response = getattr(obj, "last_response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return str(headers.get("idempotent-replayed", "")).lower() == "true"
    except AttributeError:  # pragma: no cover - headers is always a mapping
        return False
