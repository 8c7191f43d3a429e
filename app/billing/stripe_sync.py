"""Sync runs: every run of the backfill recorded in ``StripeSyncRun``, and **Sync now** in the
background of the web process.

- ``run_sync(client, trigger=…)``: one recorded run of ``stripe_backfill.backfill``
  (``portico stripe sync`` uses it). It refuses to start while another run is alive
  (``SyncBusy``). After each page the row gets the counts so far and a heartbeat; at the end it
  is ``succeeded``, ``failed`` (with the reason) or ``interrupted`` (cancelled: Ctrl-C, shutdown).
  Either way the cursors let the next run continue where this one stopped.
- A ``running`` row whose heartbeat is older than ``STALE`` belongs to a process that died: the
  next run marks it ``interrupted``.
- ``SyncRunner``: the web process's one background sync (an asyncio task; one at a time),
  started by the settings page and stopped at shutdown (``StripeGateway.aclose``).
- ``latest_runs()``: the runs the settings page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe

from app import db
from app.billing.gateway import GatewayError
from app.billing.stripe_backfill import backfill
from app.billing.stripe_client import StripeConnection
from app.billing.stripe_tables import StripeSyncRun

log = logging.getLogger("portico.stripe")

STALE = timedelta(minutes=5)  # a running run without progress for this long has died
INTERRUPTED = "It stopped before it finished; the next sync continues from there."
DIED = "It stopped without finishing (the process running it ended)."


class SyncBusy(Exception):
    """Another sync is running (``run`` is its row, when it is known)."""

    def __init__(self, run: dict[str, Any] | None = None) -> None:
        super().__init__("a sync is already running")
        self.run = run


def describe_failure(error: BaseException) -> str:
    """One line for the run's ``error``: what stopped it."""
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return "Stripe refused the API key (PORTICO_STRIPE_SECRET_KEY)."
    if isinstance(error, stripe.APIConnectionError):
        return "Stripe could not be reached."
    if isinstance(error, stripe.RateLimitError):
        return "Stripe limited the request rate; run the sync again later."
    if isinstance(error, GatewayError):
        return error.message
    reason = getattr(error, "user_message", None) or str(error) or type(error).__name__
    return reason[:1000]


async def begin_run(*, trigger: str, actor: str = "") -> str:
    """A new ``running`` row; ``SyncBusy`` if a live run exists (dead ones become
    ``interrupted``)."""
    now = datetime.now(UTC)
    async with db.write():
        running = await StripeSyncRun.select().where(StripeSyncRun.status == "running")
        for row in running:
            if row["heartbeat_at"] > now - STALE:
                raise SyncBusy(row)
        if running:
            await StripeSyncRun.update(
                {
                    StripeSyncRun.status: "interrupted",
                    StripeSyncRun.finished_at: now,
                    StripeSyncRun.error: DIED,
                }
            ).where(StripeSyncRun.id.is_in([row["id"] for row in running]))
        run_id = f"sync_{secrets.token_hex(8)}"
        await StripeSyncRun.insert(
            StripeSyncRun(
                id=run_id,
                trigger=trigger,
                actor=actor[:320],
                status="running",
                started_at=now,
                heartbeat_at=now,
                counts={},
            )
        )
    return run_id


async def _finish(run_id: str, status: str, counts: dict[str, int], error: str | None) -> None:
    now = datetime.now(UTC)
    async with db.write():
        await StripeSyncRun.update(
            {
                StripeSyncRun.status: status,
                StripeSyncRun.finished_at: now,
                StripeSyncRun.heartbeat_at: now,
                StripeSyncRun.counts: counts,
                StripeSyncRun.error: error,
            }
        ).where(StripeSyncRun.id == run_id)


async def execute_run(
    client: stripe.StripeClient,
    run_id: str,
    *,
    restart: bool = False,
    progress: Callable[[str, int, bool], None] | None = None,
) -> dict[str, int]:
    """Run the backfill for the run ``run_id`` (from ``begin_run``) and record how it ends."""
    counts: dict[str, int] = {}

    async def on_page(name: str, count: int, done: bool) -> None:
        counts[name] = count
        if progress is not None:
            progress(name, count, done)
        async with db.write():
            await StripeSyncRun.update(
                {StripeSyncRun.counts: dict(counts), StripeSyncRun.heartbeat_at: datetime.now(UTC)}
            ).where(StripeSyncRun.id == run_id)

    try:
        result = await backfill(client, restart=restart, progress=on_page)
    except asyncio.CancelledError:
        await _finish(run_id, "interrupted", counts, INTERRUPTED)
        raise
    except Exception as error:
        await _finish(run_id, "failed", counts, describe_failure(error))
        raise
    await _finish(run_id, "succeeded", result, None)
    return result


async def run_sync(
    client: stripe.StripeClient,
    *,
    trigger: str,
    actor: str = "",
    restart: bool = False,
    progress: Callable[[str, int, bool], None] | None = None,
) -> dict[str, int]:
    """One recorded run of the backfill (see the module docstring); the counts per type."""
    run_id = await begin_run(trigger=trigger, actor=actor)
    return await execute_run(client, run_id, restart=restart, progress=progress)


async def latest_runs(limit: int = 5) -> list[dict[str, Any]]:
    """The most recent runs, newest first (``counts`` decoded)."""
    return (
        await StripeSyncRun.select()
        .order_by(StripeSyncRun.started_at, ascending=False)
        .limit(limit)
        .output(load_json=True)
    )


class SyncRunner:
    """The process's background sync: at most one at a time (an asyncio task)."""

    def __init__(self, connection: StripeConnection) -> None:
        self.connection = connection
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, *, actor: str = "") -> str:
        """Begin a run and return its id; ``SyncBusy`` if one is running (here or elsewhere)."""
        async with self._lock:
            if self.running:
                raise SyncBusy()
            run_id = await begin_run(trigger="merchant", actor=actor)
            self._task = asyncio.create_task(self._run(run_id), name=f"portico-{run_id}")
        return run_id

    async def _run(self, run_id: str) -> None:
        try:
            await execute_run(self.connection.client, run_id)
        except Exception:
            log.exception("the Stripe sync %s failed", run_id)

    async def wait(self) -> None:
        """Until the current run (if any) has ended."""
        task = self._task
        if task is not None:
            await asyncio.wait([task])

    async def stop(self) -> None:
        """Cancel a running sync (it is recorded as ``interrupted``) and wait for it."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
