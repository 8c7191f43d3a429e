"""Idempotency: one intent changes billing once, also when two calls race."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from asyncpg.exceptions import UniqueViolationError

from app import db as database
from app.billing import idempotency
from app.billing.gateway import IdempotencyConflict
from app.billing.tables import IdempotencyRecord, InvoiceItem
from tests.billing.sandbox_world import key

pytestmark = pytest.mark.usefixtures("db")


def seats(world, quantity: int) -> dict:
    return {
        "price_id": world.prices["team_month"],
        "quantity": quantity,
        "proration_behavior": "create_prorations",
        "schedule_at_period_end": False,
        "trial_update_behavior": "end_trial",
    }


def test_request_hash_is_canonical():
    a = idempotency.request_hash("x", {"b": 1, "a": [1, 2]})
    assert a == idempotency.request_hash("x", {"a": [1, 2], "b": 1})
    assert a != idempotency.request_hash("y", {"a": [1, 2], "b": 1})
    assert a != idempotency.request_hash("x", {"a": [1, 2], "b": 2})


def test_key_violations_are_recognised():
    assert idempotency._is_key_violation(
        sqlite3.IntegrityError("UNIQUE constraint failed: billing_idempotency.id")
    )
    assert idempotency._is_key_violation(
        UniqueViolationError('duplicate key value violates "billing_idempotency_pkey"')
    )
    assert not idempotency._is_key_violation(
        sqlite3.IntegrityError("UNIQUE constraint failed: portal_configuration.login_page_token")
    )
    assert not idempotency._is_key_violation(ValueError("billing_idempotency"))


async def test_double_submit_changes_billing_once(world):
    same = key()
    for _ in range(2):
        await world.gateway.change_subscription(
            world.subscription, **seats(world, 8), idempotency_key=same
        )
    assert await InvoiceItem.count() == 2  # one credit and one charge, not two of each
    record = await IdempotencyRecord.objects().where(IdempotencyRecord.id == same).first()
    assert (record.customer, record.action) == (world.customer, "change_subscription")


async def test_same_key_different_change_conflicts(world):
    same = key()
    await world.gateway.change_subscription(
        world.subscription, **seats(world, 8), idempotency_key=same
    )
    with pytest.raises(IdempotencyConflict):
        await world.gateway.change_subscription(
            world.subscription, **seats(world, 9), idempotency_key=same
        )
    assert (await world.sub_item()).quantity == 8


async def test_concurrent_submits_with_one_key_change_once(world):
    same = key()
    results = await asyncio.gather(
        *(
            world.gateway.change_subscription(
                world.subscription, **seats(world, 8), idempotency_key=same
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    assert results == [None, None]
    assert await InvoiceItem.count() == 2
    assert await IdempotencyRecord.count() == 1


async def test_concurrent_changes_with_different_keys_queue(world):
    await asyncio.gather(
        world.gateway.change_subscription(
            world.subscription, **seats(world, 6), idempotency_key=key()
        ),
        world.gateway.change_subscription(
            world.subscription, **seats(world, 8), idempotency_key=key()
        ),
    )
    assert await InvoiceItem.count() == 4
    assert (await world.sub_item()).quantity in (6, 8)


async def test_race_on_the_key_becomes_a_replay(world, monkeypatch):
    """Both calls look the key up before either commits (PostgreSQL): the second claim hits the
    primary key, is rolled back and retried, and replays the first's result."""
    attempts = 0
    real_attempt = idempotency._attempt

    async def counting(*args, **kwargs):
        nonlocal attempts
        attempts += 1
        return await real_attempt(*args, **kwargs)

    monkeypatch.setattr(idempotency, "_attempt", counting)
    runs = 0

    async def slow_work():
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.3)
        return {"ran": runs}

    same = key()
    results = await asyncio.gather(
        *(
            idempotency.run(
                same, action="test", arguments={"n": 1}, customer=world.customer, work=slow_work
            )
            for _ in range(2)
        )
    )
    assert runs == 1
    assert results == [{"ran": 1}, {"ran": 1}]
    # SQLite queues the write transactions; PostgreSQL takes the unique-violation retry.
    assert attempts == (3 if database.is_postgres() else 2)


async def test_failed_work_is_not_remembered(world):
    same = key()

    async def failing():
        await InvoiceItem.delete(force=True)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await idempotency.run(same, action="t", arguments={}, customer="cus_x", work=failing)
    assert await IdempotencyRecord.count() == 0

    async def working():
        return {"ok": True}

    result = await idempotency.run(same, action="t", arguments={}, customer="cus_x", work=working)
    assert result == {"ok": True}


async def test_applied_is_the_keys_record_for_its_customer(world):
    same = key()
    owner = world.customer
    assert not await idempotency.applied(same, owner)
    await world.gateway.change_subscription(
        world.subscription, **seats(world, 8), idempotency_key=same
    )
    assert await idempotency.applied(same, owner)
    assert not await idempotency.applied(same, "cus_someone_else")
    assert not await idempotency.applied(key(), owner)
