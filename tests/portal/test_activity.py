"""One audit event per form key (``app.portal.activity``): what a key already did (``replay``),
and ``record_once``, also for the form whose billing change committed but whose process died
before its event was written (``Replay.APPLIED``: the event is written by the retry, once)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app import clock
from app.audit.service import Actor
from app.audit.tables import AuditEvent
from app.billing.tables import Customer, IdempotencyRecord
from app.portal import activity
from app.portal.activity import Replay, Who

pytestmark = pytest.mark.usefixtures("customer")

ACTION = "subscription.canceled"
CUSTOMER = "cus_activity"
KEY = "portico_" + "a" * 48
WHO = Who(actor=Actor("customer", CUSTOMER, "jenny@example.com"), configuration="pc_test")


@pytest.fixture
async def customer(db) -> None:
    """The signed-in customer's row: ``customer_lock`` holds it on PostgreSQL."""
    await Customer.insert(Customer(id=CUSTOMER, email="jenny@example.com"))


async def applied(key: str = KEY, customer: str = CUSTOMER) -> None:
    """What the gateway commits with the billing change: the key's record."""
    await IdempotencyRecord.insert(
        IdempotencyRecord(
            id=key,
            customer=customer,
            action="cancel_subscription",
            request_hash="0" * 64,
            result="{}",
            created=clock.now(),
        )
    )


async def record(replay: Replay, **values: Any) -> bool:
    return await activity.record_once(
        WHO,
        ACTION,
        key=KEY,
        object_type="subscription",
        object_id="sub_1",
        before=values.get("before", {"cancel_at_period_end": False}),
        after=values.get("after", {"cancel_at_period_end": True}),
        replay=replay,
    )


async def events() -> list[dict[str, Any]]:
    return await AuditEvent.select().where(AuditEvent.action == ACTION).output(load_json=True)


async def test_what_a_key_already_did() -> None:
    assert await activity.replay(WHO, ACTION, KEY) is Replay.NEW
    assert await activity.replay(WHO, ACTION, KEY) is Replay.NEW
    await applied()
    assert await activity.replay(WHO, ACTION, KEY) is Replay.APPLIED
    assert await activity.replay(WHO, ACTION, KEY) is not Replay.NEW
    assert await activity.replay(WHO, "subscription.paused", KEY) is Replay.APPLIED
    assert await record(Replay.APPLIED)
    assert await activity.replay(WHO, ACTION, KEY) is Replay.RECORDED
    assert await activity.replay(WHO, (ACTION, "subscription.renewed"), KEY) is not Replay.NEW


async def test_another_customers_record_is_not_this_customers_change() -> None:
    await applied(customer="cus_someone_else")
    assert await activity.replay(WHO, ACTION, KEY) is Replay.NEW


async def test_the_missing_event_is_written_once_by_concurrent_retries() -> None:
    await applied()
    written = await asyncio.gather(record(Replay.APPLIED), record(Replay.APPLIED))
    assert sorted(written) == [False, True]
    (event,) = await events()
    assert event["before"] == {}  # the state before the change is gone
    assert event["after"] == {
        "cancel_at_period_end": True,
        "recovered": True,
        "idempotency_key": KEY,
    }
    assert event["object_id"] == "sub_1"
    assert event["actor_id"] == CUSTOMER


async def test_a_recorded_key_writes_nothing() -> None:
    await applied()
    assert await record(Replay.NEW)
    assert not await record(Replay.RECORDED)
    assert not await record(Replay.APPLIED)
    assert not await record(Replay.NEW, after={"cancel_at_period_end": "changed"})
    (event,) = await events()
    assert event["before"] == {"cancel_at_period_end": False}
    assert event["after"] == {"cancel_at_period_end": True, "idempotency_key": KEY}


async def test_the_first_submit_replaces_a_recovered_event_written_meanwhile() -> None:
    """A retry found the first submit between its billing commit and its event (slow, not dead):
    the first submit, which knew the state before, has the last word; still one event."""
    await applied()
    assert await record(Replay.APPLIED)
    assert not await record(Replay.NEW)
    assert not await record(Replay.APPLIED)  # a later retry changes nothing back
    (event,) = await events()
    assert event["before"] == {"cancel_at_period_end": False}
    assert event["after"] == {"cancel_at_period_end": True, "idempotency_key": KEY}
