"""Pytest fixtures for the fake Stripe API.

Import them into a ``conftest.py``::

    from tests.stripe_api.fixtures import stripe_api, stripe_client  # noqa: F401

* ``stripe_api`` - a started :class:`StripeAPIServer` (function scope: fresh state per test);
* ``stripe_client`` - a ``stripe.StripeClient`` bound to it, using the SDK's httpx transport
  (:class:`.sdk.HTTPXClient`, sync and async methods, 10 s timeout, 2 retries), closed after
  the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import stripe

from .server import StripeAPIServer


@pytest.fixture
def stripe_api() -> Iterator[StripeAPIServer]:
    with StripeAPIServer() as server:
        yield server
        assert not server.errors, "the fake Stripe server crashed:\n" + "\n".join(server.errors)


@pytest_asyncio.fixture
async def stripe_client(stripe_api: StripeAPIServer) -> AsyncIterator[stripe.StripeClient]:
    async with stripe_api.connect() as client:
        yield client
