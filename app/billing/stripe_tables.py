"""Bookkeeping for Stripe mode: which events were applied, and where a backfill stopped.

- ``StripeEvent``: one row per Stripe event id Portico has seen (from a webhook or from
  ``portico stripe reconcile``). ``status`` is ``pending`` until the objects it names were
  re-fetched and written to the mirror (``processed``), or ``ignored`` for event types the mirror
  does not follow. A delivery of an event that is already processed/ignored changes nothing.
- ``StripeSyncCursor``: one row per object type of ``portico stripe sync`` (the last id fetched,
  for ``starting_after``) plus the ``events`` row whose ``watermark`` is the Stripe time up to
  which ``reconcile`` has checked the event log.
"""

from piccolo.columns import BigInt, Boolean, Integer, Text, Timestamptz, Varchar
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
