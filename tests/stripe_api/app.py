"""The request pipeline of the fake Stripe API, independent of the socket layer.

Pipeline for ``/v1/...`` (in this order):

1. fault injection (:mod:`.faults`) - delay and/or fail matching requests;
2. authentication - ``Authorization: Bearer sk_test_...`` (or HTTP Basic with the key as
   user name, like Stripe); otherwise 401 with a Stripe-shaped error;
3. form/query decoding (:mod:`.encoding`) and idempotency: a ``POST`` with an
   ``Idempotency-Key`` already used with the same method, path and parameters replays the
   stored response with ``Idempotent-Replayed: true``; with different parameters it is a 400
   ``idempotency_error``; while the first request with a key is still running, another one
   with that key is not run but answered ``409 idempotency_key_in_use`` (which the SDK
   retries).  Responses are stored once the endpoint ran (also its 4xx/402), not for
   validation failures, conflicts or injected faults - as documented by Stripe;
4. routing (:mod:`.routing`) - unknown URLs answer Stripe's "Unrecognized request URL" 404;
5. parameter validation against the SDK's ``*Params`` TypedDict (:mod:`.params`);
6. the handler, under the state lock, in a transaction: clock-driven changes are applied
   first (:func:`.lifecycle.process_due`), and a failed request rolls the state back
   (except failures Stripe records, such as a declined invoice payment);
7. rendering with ``expand[]`` (:mod:`.objects`), ``Request-Id``/``Stripe-Version``
   headers, and an entry in :attr:`StripeAPIServer.requests`.

Other paths serve the hosted Checkout and invoice pages (:mod:`.pages`).
"""

from __future__ import annotations

import base64
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import lifecycle, pages
from .encoding import decode_body, decode_pairs, decode_query, encode_params
from .errors import StripeError
from .faults import FaultInjector
from .objects import render
from .params import params_class, validate
from .resources import checkout
from .routing import Context, Route, match
from .state import State

Response = tuple[int, dict[str, str], bytes]
DEFAULT_KEY = "sk_test_portico_stripe_api_0000"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received (API requests only, not hosted pages)."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    headers: dict[str, str]
    status: int = 0
    request_id: str = ""
    replayed: bool = False
    fault: bool = False
    query: str = field(default="", repr=False)


def tick(state: State) -> None:
    """Apply everything the clock made due (renewals, cancellations, expiries)."""
    lifecycle.process_due(state)
    checkout.expire_due(state)


class APIApp:
    """The request pipeline, independent of the socket layer."""

    def __init__(self, state: State, api_keys: Iterable[str] | None = None) -> None:
        self.state = state
        self.api_keys = set(api_keys) if api_keys is not None else None
        self.faults = FaultInjector()
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self._idempotency: dict[str, tuple[str, int, bytes, dict[str, str]]] = {}
        self._keys_in_use: set[str] = set()
        self.processing_delay = 0.0  # seconds; StripeAPIServer.slow_processing
        self._idempotency_lock = threading.Lock()
        self._log_lock = threading.Lock()

    # -- entry point ----------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        split = urlsplit(target)
        if not split.path.startswith("/v1/"):
            return pages.handle(self.transaction, method, split.path, split.query, body)
        request_id = "req_" + uuid.uuid4().hex[:14]
        lower = {k.lower(): v for k, v in headers.items()}
        key = lower.get("idempotency-key") if method == "POST" else None
        status, payload, extra, params, flags = self._api(
            method, split.path, split.query, lower, body, request_id, key
        )
        response_headers = {
            "Content-Type": "application/json",
            "Request-Id": request_id,
            "Stripe-Version": lower.get("stripe-version") or self.state.api_version,
            "Cache-Control": "no-cache, no-store",
            **extra,
        }
        if key:
            response_headers["Idempotency-Key"] = key
        with self._log_lock:
            self.requests.append(
                RecordedRequest(
                    method,
                    split.path,
                    params,
                    key,
                    dict(headers),
                    status,
                    request_id,
                    replayed=flags == "replayed",
                    fault=flags == "fault",
                    query=split.query,
                )
            )
        return status, response_headers, payload

    def _api(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        request_id: str,
        key: str | None,
    ) -> tuple[int, bytes, dict[str, str], dict[str, Any], str]:
        params: dict[str, Any] = {}
        fault = self.faults.take(method, path)
        if fault is not None:
            if fault.delay_seconds:
                self.stopping.wait(fault.delay_seconds)
            if fault.status is not None:
                error = fault.error()
                return error.status, _json(error.body(request_id)), error.headers, params, "fault"
        try:
            self._authenticate(headers)
            params = decode_query(query) if method in ("GET", "DELETE") else decode_body(body)
            if method == "POST" and query:
                params = {**decode_query(query), **params}
        except StripeError as error:
            return error.status, _json(error.body(request_id)), error.headers, params, ""
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        if key is None:
            return self._run(method, path, params, request_id, None, fingerprint)
        with self._idempotency_lock:
            stored = self._idempotency.get(key)
            in_use = stored is None and key in self._keys_in_use
            if stored is None and not in_use:
                self._keys_in_use.add(key)  # checked and claimed at once: one runs
        if in_use:
            error = StripeError(
                409,
                "There is currently another in-progress request using this Stripe API key and "
                "idempotency key (that probably means you submitted twice, and the other request "
                f"is still going through): {key}. Please try again later.",
                type="idempotency_error",
                code="idempotency_key_in_use",
            )
            return 409, _json(error.body(request_id)), {}, params, ""
        if stored is not None:
            stored_fingerprint, status, payload, extra = stored
            if stored_fingerprint != fingerprint:
                error = StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
                return 400, _json(error.body(request_id)), {}, params, ""
            replay_headers = {**extra, "Idempotent-Replayed": "true"}
            return status, payload, replay_headers, params, "replayed"
        try:
            return self._run(method, path, params, request_id, key, fingerprint)
        finally:
            with self._idempotency_lock:
                self._keys_in_use.discard(key)

    def _run(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        request_id: str,
        key: str | None,
        fingerprint: str,
    ) -> tuple[int, bytes, dict[str, str], dict[str, Any], str]:
        """Route, validate and execute; the answer is stored for the key once the endpoint ran."""
        try:
            route, args, valid = self.resolve(method, path, params)
        except StripeError as error:
            return error.status, _json(error.body(request_id)), error.headers, params, ""
        if self.processing_delay:
            self.stopping.wait(self.processing_delay)
        status, result, extra = self.execute(route, args, valid, method, path, request_id, key)
        payload = _json(result)
        if key is not None:
            with self._idempotency_lock:
                self._idempotency[key] = (
                    fingerprint,
                    status,
                    payload,
                    {"Original-Request": request_id},
                )
        return status, payload, extra, params, ""

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        api_key = ""
        if auth.lower().startswith("bearer "):
            api_key = auth[7:].strip()
        elif auth.lower().startswith("basic "):
            try:
                api_key = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except ValueError:
                api_key = ""
        if not api_key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details.",
                headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
            )
        valid = (
            api_key in self.api_keys
            if self.api_keys is not None
            else api_key.startswith(("sk_test_", "rk_test_")) and len(api_key) > 8
        )
        if not valid:
            raise StripeError(
                401,
                f"Invalid API Key provided: {api_key[:8]}{'*' * 4}{api_key[-4:]}",
                code="api_key_invalid" if not api_key.startswith("sk_live_") else None,
                headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
            )

    # -- shared by HTTP requests and the seed helpers --------------------------------------
    def resolve(
        self, method: str, path: str, params: dict[str, Any]
    ) -> tuple[Route, dict[str, str], dict[str, Any]]:
        found = match(method, path)
        if found is None:
            raise StripeError(
                404,
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                "or we can help at https://support.stripe.com/.",
            )
        route, args = found
        return route, args, validate(params, params_class(route.params))

    def execute(
        self,
        route: Route,
        args: dict[str, str],
        params: dict[str, Any],
        method: str,
        path: str,
        request_id: str | None,
        key: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        state = self.state
        with state.lock:
            tick(state)
            snapshot = state.snapshot() if method != "GET" else None
            state.request = (request_id, key)
            expand = list(params.get("expand", []))
            try:
                ctx = Context(state, params, args, method, path, expand)
                return 200, render(state, route.handler(ctx), expand), {}
            except StripeError as error:
                if snapshot is not None and not error.persist:
                    state.restore(snapshot)
                return error.status, error.body(request_id), error.headers
            except Exception as exc:  # a bug in the fake server: report it loudly
                if snapshot is not None:
                    state.restore(snapshot)
                self.errors.append(traceback.format_exc())
                error = StripeError(
                    500, f"Internal error in the fake Stripe server: {exc!r}", type="api_error"
                )
                return 500, error.body(request_id), {}
            finally:
                state.request = (None, None)

    def call(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run an API call in-process (no HTTP, auth or faults); raise StripeError on failure."""
        route, args, valid = self.resolve(method, path, decode_pairs(encode_params(params)))
        status, result, _ = self.execute(route, args, valid, method, path, None, None)
        if status != 200:
            error = result["error"]
            raise StripeError(
                status,
                error["message"],
                type=error["type"],
                code=error.get("code"),
                param=error.get("param"),
            )
        return result

    def transaction(self, page: Callable[[State], Response]) -> Response:
        state = self.state
        with state.lock:
            tick(state)
            snapshot = state.snapshot()
            try:
                return page(state)
            except pages.PageError as exc:
                state.restore(snapshot)
                return exc.response
            except Exception:
                state.restore(snapshot)
                self.errors.append(traceback.format_exc())
                return 500, {"Content-Type": "text/plain"}, b"Internal error"


def _json(payload: Any) -> bytes:
    return json.dumps(payload, indent=2, default=str).encode("utf-8")


__all__ = ["APIApp", "RecordedRequest", "Response", "tick"]
