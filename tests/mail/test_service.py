"""The outbox: queueing, sealing secrets, waking the worker."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from app import clock
from app.mail import service as mail
from app.mail.tables import OutboxMessage
from app.settings import Settings


def _other_key(settings: Settings) -> Settings:
    fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
    return Settings(**{**fields, "secret_key": "a-different-secret-key-" + "z" * 32})


def test_seal_and_unseal(settings):
    sealed = mail.seal(settings, {"code": "493027"})
    assert "493027" not in sealed
    assert sealed != mail.seal(settings, {"code": "493027"})  # fresh IV each time
    assert mail.unseal(settings, sealed) == {"code": "493027"}


def test_unseal_refuses_what_it_cannot_open(settings):
    sealed = mail.seal(settings, {"code": "493027"})
    assert mail.unseal(_other_key(settings), sealed) == {}
    assert mail.unseal(settings, sealed[:-4] + "AAAA") == {}
    assert mail.unseal(settings, None) == {}
    assert mail.unseal(settings, "") == {}


async def test_enqueue(db, settings):
    expires = clock.now() + timedelta(minutes=10)
    message_id = await mail.enqueue(
        settings,
        kind="passcode",
        to_address="jenny.rosen@example.com",
        subject="",
        template="passcode",
        context={"attempt_id": "abc"},
        secrets={"code": "493027"},
        expires_at=expires,
        configuration="bpc_1",
        reference="abc",
    )
    row = await OutboxMessage.select().where(OutboxMessage.id == message_id).first()
    assert row is not None
    assert row["status"] == "queued"
    assert row["attempts"] == 0
    assert row["next_attempt_at"] <= clock.now()
    assert row["expires_at"] == expires
    assert row["reference"] == "abc"
    assert json.loads(row["context"]) == {"attempt_id": "abc"}
    assert "493027" not in row["sealed"]
    assert mail.unseal(settings, row["sealed"]) == {"code": "493027"}

    plain = await mail.enqueue(
        settings, kind="test", to_address="a@example.com", subject="Hi", template="t"
    )
    row = await OutboxMessage.select().where(OutboxMessage.id == plain).first()
    assert row is not None
    assert row["sealed"] is None
    assert row["expires_at"] is None


def test_preparers_are_registered_by_kind():
    async def prepare(message, secrets):
        return None

    mail.register("zz-test-kind", prepare)
    assert mail.preparer("zz-test-kind") is prepare
    assert mail.preparer("no-such-kind") is None


async def test_notify_wakes_the_attached_worker():
    event = asyncio.Event()
    mail.attach_wakeup(event)
    try:
        mail.notify()
        assert event.is_set()
    finally:
        mail.attach_wakeup(None)
    event.clear()
    mail.notify()
    assert not event.is_set()
