"""Checks on what the Stripe test server received, shared by these tests and the Stripe-mode
end-to-end journeys (``e2e/stripe``)."""

from __future__ import annotations

from tests.stripe_api import StripeAPIServer, StripeError


def rejected_by_types(server: StripeAPIServer) -> list[str]:
    """Requests whose parameters the ``stripe`` package's ``*Params`` types do not allow (the
    server's own validator, run again on what was recorded)."""
    problems = []
    for request in server.requests:
        if request.fault or request.replayed:
            continue
        try:
            server.app.resolve(request.method, request.path, request.params)
        except StripeError as error:
            problems.append(f"{request.method} {request.path} {request.params}: {error.message}")
    return problems


def assert_allowed_by_types(server: StripeAPIServer) -> None:
    """Fails if any request ``server`` received is not allowed by the ``stripe`` package's types."""
    problems = rejected_by_types(server)
    assert not problems, "requests the stripe types do not allow:\n" + "\n".join(problems)
