"""Stripe mode, end to end: the Stripe test server (``tests.stripe_api``) runs in this process,
seeded with demo-like data; Portico runs in Stripe mode against it (``e2e.support.stripe_portico``)
with a real SMTP server; webhooks are relayed as Stripe sends them.

The browser fixtures of ``e2e/conftest.py`` (``js``, ``page``, ``guard``, …) apply here with
``live_server`` and ``portico_db`` overridden: every journey runs once with JavaScript on and once
with it off, and may reach only loopback addresses (Portico, and the test server's hosted Checkout
and invoice pages). At the end of the session the test server must have received no request its
parameter validation (the ``stripe`` package's types) refuses.

The journeys' shared steps and checks are in ``e2e.support.stripe_journeys``; the ``journey``
fixture takes them for one test.

Run: ``.venv/bin/pytest e2e/stripe -q -p no:cacheprovider``
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from e2e.support import server as live
from e2e.support import stripe_portico as portico
from e2e.support.database import PorticoDatabase
from e2e.support.mailbox import Mailbox
from e2e.support.stripe_journeys import Fresh, StripeJourney
from e2e.support.stripe_world import StripeWorld, seed
from tests.billing.stripe.support import rejected_by_types
from tests.stripe_api import StripeAPIServer


def parameter_errors(server: StripeAPIServer) -> list[str]:
    """Requests refused for their parameters (400), and any the types would refuse."""
    refused = [
        f"{r.method} {r.path} -> {r.status} {r.params}"
        for r in server.requests
        if r.status == 400 and not r.fault
    ]
    return refused + rejected_by_types(server)


@pytest.fixture(scope="session")
def stripe_api() -> Iterator[StripeAPIServer]:
    with StripeAPIServer(account_name="Acme Cloud") as server:
        yield server
        assert not server.errors, "the Stripe test server crashed:\n" + "\n".join(server.errors)
        problems = parameter_errors(server)
        assert not problems, "parameter errors on the Stripe test server:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def stripe_world(stripe_api: StripeAPIServer) -> StripeWorld:
    return seed(stripe_api)


@pytest.fixture(scope="session")
def stripe_portico(
    smtp_server: tuple[Mailbox, int],
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[portico.StripePortico]:
    var_dir = tmp_path_factory.mktemp("portico-e2e-stripe")
    running = portico.start(var_dir, smtp_server[1], stripe_api, stripe_world)
    try:
        yield running
        assert not running.relay.failures, "webhook deliveries failed:\n" + "\n".join(
            running.relay.failures
        )
    finally:
        died = running.server.process.poll() is not None
        portico.stop(running)
        if died:
            print(f"\nThe Portico server died during the run:\n{running.server.log_tail()}")


@pytest.fixture(scope="session")
def live_server(stripe_portico: portico.StripePortico) -> live.LiveServer:
    """The Stripe-mode server (the browser fixtures of ``e2e/conftest.py`` use it)."""
    return stripe_portico.server


@pytest.fixture(scope="session")
def portico_db(live_server: live.LiveServer) -> PorticoDatabase:
    return PorticoDatabase(live_server.db_path)


@pytest.fixture
def journey(
    page: Page,
    js: bool,
    live_server: live.LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    stripe_world: StripeWorld,
    stripe_portico: portico.StripePortico,
) -> StripeJourney:
    return StripeJourney(page, js, live_server, mailbox, fresh_email, stripe_world, stripe_portico)
