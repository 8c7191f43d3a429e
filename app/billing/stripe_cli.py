"""``portico stripe …``: copy Stripe's data into the mirror (registered in ``app.cli``).

- ``portico stripe sync [--restart]``: backfill every object type with a progress bar. Each page
  is written with its cursor, so after an interruption (Ctrl-C, network, Stripe error) running it
  again resumes where it stopped; once a pass finished, running it again starts a new pass
  (upserts, so nothing changes unless Stripe changed). Each run is recorded (``StripeSyncRun``,
  shown on the settings page) and refused while another one runs.
- ``portico stripe reconcile [--since WHEN]``: apply the events the webhook endpoint missed
  (``events.list(created>=…)``), from where the last reconcile stopped by default. Cheap when
  nothing was missed: run it on a schedule (every few minutes) as a safety net for webhooks.

Both need ``PORTICO_STRIPE_SECRET_KEY`` (``PORTICO_STRIPE_API_BASE`` for a test server) and a
migrated database (``PORTICO_DATABASE_URL``); ``PORTICO_BILLING`` does not have to be ``stripe``
yet, so the mirror can be filled before the switch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import click
import stripe

from app.settings import Settings, SettingsError

T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    if not settings.stripe_secret_key:
        raise click.ClickException(
            "PORTICO_STRIPE_SECRET_KEY: required (a secret or restricted key with read access)"
        )
    return settings


async def _with_stripe(
    settings: Settings, work: Callable[[stripe.StripeClient], Awaitable[T]]
) -> T:
    from app import db
    from app.billing.stripe_client import StripeConnection
    from app.billing.stripe_tables import StripeSyncCursor

    engine = db.make_engine(settings.resolved_database_url)
    db.bind(engine)
    await db.start(engine)
    connection = StripeConnection(settings.stripe_secret_key, settings.stripe_api_base)
    try:
        if not await StripeSyncCursor.table_exists():
            raise click.ClickException("The database is not migrated: run `portico migrate`.")
        return await work(connection.client)
    except stripe.AuthenticationError:
        raise click.ClickException(
            "Stripe refused the API key (PORTICO_STRIPE_SECRET_KEY)."
        ) from None
    finally:
        await connection.aclose()
        await db.stop(engine)


def _stopped(what: str, error: BaseException, again: str) -> click.ClickException:
    reason = getattr(error, "user_message", None) or str(error) or type(error).__name__
    return click.ClickException(f"{what} stopped: {reason}\nRun `{again}` again to continue.")


def _parse_since(value: str | None) -> int | None:
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            "use an ISO date or time (2025-01-31, 2025-01-31T12:00:00+00:00) or unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@click.group("stripe", help="Stripe mode: keep the local mirror equal to Stripe.")
def stripe_group() -> None:
    pass


@stripe_group.command(
    "sync",
    help="Copy products, prices, coupons, promotion codes, customers, "
    "subscriptions, invoices, payment methods and tax ids from Stripe. "
    "Resumes an interrupted run; safe to run again.",
)
@click.option("--restart", is_flag=True, help="Start a new pass instead of resuming.")
def sync_command(restart: bool) -> None:
    from app.billing import stripe_sync
    from app.billing.stripe_backfill import STEP_NAMES

    settings = _settings()
    labels = {name: name.replace("_", " ") for name in STEP_NAMES}
    with click.progressbar(
        length=len(STEP_NAMES),
        label="Syncing from Stripe",
        item_show_func=lambda item: item or "",
        show_pos=True,
    ) as bar:

        def progress(name: str, count: int, done: bool) -> None:
            bar.update(1 if done else 0, f"{labels[name]}: {count}")

        try:
            counts = asyncio.run(
                _with_stripe(
                    settings,
                    lambda client: stripe_sync.run_sync(
                        client, trigger="cli", restart=restart, progress=progress
                    ),
                )
            )
        except stripe_sync.SyncBusy:
            raise click.ClickException(
                "Another sync is running (from the settings page or another terminal). "
                "Wait for it to finish, then run `portico stripe sync` again."
            ) from None
        except (stripe.StripeError, OSError) as error:
            raise _stopped("The sync", error, "portico stripe sync") from None
    for name in STEP_NAMES:
        click.echo(f"{labels[name]}: {counts.get(name, 0)}")
    click.echo("The mirror is up to date with Stripe.")


@stripe_group.command(
    "reconcile",
    help="Apply Stripe events the webhook endpoint did not "
    "process (since the last reconcile, or --since).",
)
@click.option(
    "--since",
    "since",
    default=None,
    help="Replay events from this time: ISO date "
    "or time (UTC unless a zone is given) or unix seconds.",
)
def reconcile_command(since: str | None) -> None:
    from app.billing import stripe_events

    settings = _settings()
    start = _parse_since(since)
    try:
        result = asyncio.run(
            _with_stripe(settings, lambda client: stripe_events.reconcile(client, since=start))
        )
    except (stripe.StripeError, OSError) as error:
        raise _stopped("Reconcile", error, "portico stripe reconcile") from None
    when = datetime.fromtimestamp(result.since, UTC).isoformat(timespec="seconds")
    click.echo(
        f"Events since {when}: {result.listed}; applied {result.applied} "
        f"({result.objects} objects re-fetched), ignored {result.ignored}, "
        f"already applied {result.already}."
    )
