"""Bookkeeping for Stripe mode: which events were applied, and where a backfill stopped.

- ``StripeEvent``: one row per Stripe event id Portico has seen (from a webhook or from
  ``portico stripe reconcile``). ``status`` is ``pending`` until the objects it names were
  re-fetched and written to the mirror (``processed``), or ``ignored`` for event types the mirror
  does not follow. A delivery of an event that is already processed/ignored changes nothing.
- ``StripeSyncCursor``: one row per object type of ``portico stripe sync`` (the last id fetched,
  for ``starting_after``) plus the ``events`` row whose ``watermark`` is the Stripe time up to
  which ``reconcile`` has checked the event log.
- ``StripeSyncRun``: one row per run of the sync (``portico stripe sync`` or **Sync now** on the
  settings page): when it started and ended, how it ended, and the objects written per type.
"""

from piccolo.columns import JSON, BigInt, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class StripeEvent(Table, tablename="stripe_event"):
    id = Varchar(length=255, primary_key=True)  # evt_...
    type = Varchar(length=128)
    created = Timestamptz(index=True)  # Stripe's time of the event
    # What the event is about (re-fetched from Stripe when the event is applied).
    object_type = Varchar(length=64, null=True, default=None)
    object_id = Varchar(length=255, null=True, default=None)
    object_parent = Varchar(length=255, null=True, default=None)  # a tax id's customer
    status = Varchar(length=16, default="pending")  # pending | processed | ignored
    source = Varchar(length=16, default="webhook")  # webhook | reconcile
    attempts = Integer(default=0)
    last_error = Text(null=True, default=None)
    received_at = Timestamptz(default=TimestamptzNow())
    processed_at = Timestamptz(null=True, default=None)


class StripeSyncCursor(Table, tablename="stripe_sync_cursor"):
    id = Varchar(length=64, primary_key=True)  # object type ("customers", …) or "events"
    starting_after = Varchar(length=255, null=True, default=None)
    done = Boolean(default=False)
    count = Integer(default=0)  # objects written in the current pass
    watermark = BigInt(null=True, default=None)  # "events": unix time reconcile has reached
    updated_at = Timestamptz(default=TimestamptzNow())


class StripeSyncRun(Table, tablename="stripe_sync_run"):
    id = Varchar(length=64, primary_key=True)  # sync_...
    trigger = Varchar(length=16, default="cli")  # cli | merchant
    actor = Varchar(length=320, default="")  # the merchant who asked (email), "" for the CLI
    status = Varchar(length=16, default="running")  # running | succeeded | failed | interrupted
    started_at = Timestamptz(default=TimestamptzNow(), index=True)
    heartbeat_at = Timestamptz(default=TimestamptzNow())  # last progress (a page written)
    finished_at = Timestamptz(null=True, default=None)
    counts = JSON(default={})  # objects written per object type in this pass
    error = Text(null=True, default=None)
