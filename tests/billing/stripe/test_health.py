"""The "billing is unreachable" state: set when Stripe does not answer an action or the refresh
at sign-in, cleared when it answers again, forgotten after ``DEGRADED_FOR``."""

from __future__ import annotations

import pytest

from app.billing.gateway import GatewayUnavailable
from app.billing.health import DEGRADED_FOR, BillingHealth, health_of
from app.billing.sandbox import SandboxGateway
from app.billing.stripe_gateway import StripeGateway
from app.settings import Settings
from tests.stripe_api import StripeAPIServer


def test_the_state_lasts_a_few_minutes_after_the_last_failure() -> None:
    now = [1000.0]
    health = BillingHealth(clock=lambda: now[0])
    assert not health.degraded
    health.failed()
    assert health.degraded
    assert health.failed_at is not None
    now[0] += DEGRADED_FOR - 1
    assert health.degraded
    now[0] += 2
    assert not health.degraded
    health.failed()
    health.recovered()
    assert not health.degraded
    assert health.failed_at is None


def test_only_the_stripe_gateway_has_a_health_record(settings: Settings) -> None:
    assert health_of(SandboxGateway(settings)) is None
    assert health_of(object()) is None


async def test_unreachable_stripe_marks_it_and_an_answer_clears_it(
    stripe_api: StripeAPIServer, stripe_settings: Settings, db, payer
) -> None:
    quick = StripeGateway(stripe_settings, request_timeout=0.5, deadline=1.0, max_network_retries=0)
    try:
        stripe_api.inject_fault("/v1/customers/*", status=503, times=None)
        with pytest.raises(GatewayUnavailable):
            await quick.refresh_customer(payer["id"])  # the refresh at sign-in
        assert quick.health.degraded
        stripe_api.clear_faults()
        await quick.refresh_customer(payer["id"])
        assert not quick.health.degraded

        stripe_api.inject_fault("/v1/customers/*", delay_seconds=2.0, times=1)
        with pytest.raises(GatewayUnavailable):
            await quick.set_default_payment_method(
                payer["id"], "pm_missing", idempotency_key="health-1"
            )
        assert quick.health.degraded
    finally:
        await quick.aclose()
