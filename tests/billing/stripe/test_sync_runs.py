"""Sync runs: each run recorded (start, end, result, counts), one at a time, a dead run noticed,
and the background runner of the settings page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe

from app.billing import stripe_sync
from app.billing.stripe_gateway import StripeGateway
from app.billing.stripe_tables import StripeSyncRun
from tests.stripe_api import StripeAPIServer


async def runs() -> list[dict[str, Any]]:
    return await StripeSyncRun.select().order_by(StripeSyncRun.started_at).output(load_json=True)


async def test_a_run_records_its_start_end_result_and_counts(
    stripe_api: StripeAPIServer, gateway: StripeGateway, catalog, payer
) -> None:
    seen: list[tuple[str, int, bool]] = []
    counts = await stripe_sync.run_sync(
        gateway.client, trigger="cli", progress=lambda *step: seen.append(step)
    )
    assert counts["prices"] == 3
    assert ("customers", 1, True) in seen
    [run] = await runs()
    assert run["status"] == "succeeded"
    assert run["trigger"] == "cli"
    assert run["error"] is None
    assert run["started_at"] <= run["finished_at"]
    assert run["counts"] == counts


async def test_a_failed_run_says_why(stripe_api: StripeAPIServer, gateway: StripeGateway) -> None:
    stripe_api.inject_fault("/v1/coupons", status=401, times=None, method="GET")
    with pytest.raises(stripe.AuthenticationError):
        await stripe_sync.run_sync(gateway.client, trigger="cli")
    [run] = await runs()
    assert run["status"] == "failed"
    assert run["error"] == "Stripe refused the API key (PORTICO_STRIPE_SECRET_KEY)."
    assert run["finished_at"] is not None
    assert set(run["counts"]) == {"products", "prices"}


async def test_one_run_at_a_time_and_a_dead_run_is_noticed(
    stripe_api: StripeAPIServer, gateway: StripeGateway
) -> None:
    first = await stripe_sync.begin_run(trigger="cli")
    with pytest.raises(stripe_sync.SyncBusy) as busy:
        await stripe_sync.begin_run(trigger="merchant")
    assert busy.value.run is not None
    assert busy.value.run["id"] == first
    # The process running it died: no heartbeat for longer than STALE.
    old = datetime.now(UTC) - stripe_sync.STALE - timedelta(seconds=1)
    await StripeSyncRun.update({StripeSyncRun.heartbeat_at: old}).where(StripeSyncRun.id == first)
    await stripe_sync.run_sync(gateway.client, trigger="merchant", actor="owner@acme.example")
    dead, done = await runs()
    assert (dead["id"], dead["status"], dead["error"]) == (first, "interrupted", stripe_sync.DIED)
    assert (done["status"], done["actor"]) == ("succeeded", "owner@acme.example")


async def test_the_runner_runs_in_the_background_and_stops_at_shutdown(
    stripe_api: StripeAPIServer, gateway: StripeGateway, catalog
) -> None:
    stripe_api.inject_fault("/v1/products", delay_seconds=5.0, method="GET")
    run_id = await gateway.syncs.start(actor="owner@acme.example")
    assert gateway.syncs.running
    with pytest.raises(stripe_sync.SyncBusy):
        await gateway.syncs.start()
    [run] = await runs()
    assert (run["id"], run["status"], run["trigger"]) == (run_id, "running", "merchant")
    await asyncio.sleep(0.1)
    await gateway.aclose()  # app shutdown
    assert not gateway.syncs.running
    [run] = await runs()
    assert run["status"] == "interrupted"
    assert run["error"] == stripe_sync.INTERRUPTED

    stripe_api.clear_faults()
    again = await gateway.syncs.start()
    await gateway.syncs.wait()
    latest = (await runs())[-1]
    assert (latest["id"], latest["status"]) == (again, "succeeded")
    assert latest["counts"]["products"] == 2
