"""Stored SMTP settings: the password's encryption, precedence (environment, stored, catcher),
saving with its activity record, the cache the worker reads, and delivery through stored
settings to a real SMTP server."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from app.audit import service as audit
from app.audit.tables import AuditEvent
from app.factory import smtp_config
from app.mail import service as mail
from app.mail import settings as mail_settings
from app.mail.forms import MailSettingsForm, host_problem, port_problem
from app.mail.settings import Changes, StoredMail
from app.mail.tables import MailSettings, OutboxMessage
from app.mail.worker import DeliveryWorker
from app.web.templating import make_environment
from tests.conftest import TEST_SECRET
from tests.fixtures.smtp import body_text

ACTOR = audit.Actor(type="merchant", id="macct_1", email="owner@acme.example")
SECRET = "correct-horse-smtp-password"


@pytest.fixture
def settings(settings):
    return msgspec.structs.replace(settings, mail_from=mail_settings.DEFAULT_MAIL_FROM)


class FakeCatcher:
    port = 2500


# -- the password at rest ---------------------------------------------------------------------


def test_the_password_is_sealed_with_its_own_key(settings):
    sealed = mail_settings.seal_password(settings, SECRET)
    assert SECRET not in sealed
    assert mail_settings.unseal_password(settings, sealed) == SECRET
    assert mail_settings.seal_password(settings, SECRET) != sealed  # random IV
    assert mail.unseal(settings, sealed) == {}  # the outbox's key cannot read it
    other = msgspec.structs.replace(settings, secret_key=TEST_SECRET + "-rotated")
    assert mail_settings.unseal_password(other, sealed) is None
    assert mail_settings.unseal_password(settings, None) == ""
    assert mail_settings.unseal_password(settings, "garbage") is None


# -- precedence ---------------------------------------------------------------------------------

STORED = StoredMail(
    host="smtp.stored.example",
    port=465,
    security="tls",
    username="stored-user",
    password="stored-password",
    has_password=True,
    sender_name="Stored Sender",
    sender_address="stored@acme.example",
)


def test_the_environment_comes_first(settings):
    env = msgspec.structs.replace(
        settings,
        smtp_host="smtp.env.example",
        smtp_port=2525,
        smtp_security="starttls",
        smtp_username="env-user",
        smtp_password="env-password",
        mail_from="Env <env@acme.example>",
    )
    config = smtp_config(env, None, STORED)
    assert (config.host, config.port, config.security) == ("smtp.env.example", 2525, "starttls")
    assert (config.username, config.password) == ("env-user", "env-password")
    assert config.sender == "Env <env@acme.example>"
    assert mail_settings.server_source(env, STORED, 2500) == "environment"
    assert set(mail_settings.env_fields(env)) == {
        "host",
        "port",
        "security",
        "username",
        "password",
        "sender_name",
        "sender_address",
    }


def test_stored_settings_come_next_then_the_catcher(settings):
    config = smtp_config(settings, FakeCatcher(), STORED)  # type: ignore[arg-type]
    assert (config.host, config.port, config.security) == ("smtp.stored.example", 465, "tls")
    assert (config.username, config.password) == ("stored-user", "stored-password")
    assert config.sender == "Stored Sender <stored@acme.example>"
    assert mail_settings.env_fields(settings) == {}

    catcher = smtp_config(settings, FakeCatcher(), None)  # type: ignore[arg-type]
    assert (catcher.host, catcher.port) == ("127.0.0.1", 2500)
    # A stored sender without a stored server still names the sender.
    sender_only = StoredMail(sender_name="Acme", sender_address="billing@acme.example")
    assert smtp_config(settings, FakeCatcher(), sender_only).sender == (  # type: ignore[arg-type]
        "Acme <billing@acme.example>"
    )
    with pytest.raises(RuntimeError, match="no SMTP server is configured"):
        smtp_config(settings, None, None)


def test_the_environment_sender_alone_wins_over_the_stored_one(settings):
    env = msgspec.structs.replace(settings, mail_from="Env <env@acme.example>")
    config = smtp_config(env, None, STORED)
    assert config.host == "smtp.stored.example"
    assert config.sender == "Env <env@acme.example>"
    assert set(mail_settings.env_fields(env)) == {"sender_name", "sender_address"}


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["smtp.example.com", "smtp.example.com.", "localhost", "10.0.0.1", "[::1]", "bücher.de"]
)
def test_good_hosts(host):
    assert host_problem(host) is None


@pytest.mark.parametrize(
    "host",
    ["", "smtp example.com", "smtp_1.example.com", "a..b", "-a.example", "a-.example", "x" * 254],
)
def test_bad_hosts(host):
    assert host_problem(host)


@pytest.mark.parametrize(("port", "ok"), [("1", True), ("65535", True), ("0", False), ("", False)])
def test_ports(port, ok):
    assert (port_problem(port) is None) is ok


def test_locked_fields_are_neither_checked_nor_stored():
    form = MailSettingsForm(host="", port="", security="", sender_address="billing@acme.example")
    locked = {"host", "port", "security", "username", "password"}
    assert form.check(locked) == {}
    assert form.cleaned(locked) == Changes(sender_name="", sender_address="billing@acme.example")


# -- saving -------------------------------------------------------------------------------------


async def test_save_encrypts_records_and_skips_no_op_saves(db, settings):
    changes = Changes(
        host="smtp.acme.example",
        port=587,
        security="starttls",
        username="user",
        new_password=SECRET,
        sender_name="Acme",
        sender_address="billing@acme.example",
    )
    changed = await mail_settings.save(settings, changes, ACTOR)
    assert set(changed) == {
        "host",
        "username",
        "sender_name",
        "sender_address",
        "password",
    }  # port 587 and starttls are the defaults
    row = await MailSettings.select().first()
    assert SECRET not in json.dumps(row, default=str)
    stored = await mail_settings.load(settings)
    assert stored is not None
    assert stored.password == SECRET
    assert stored.has_password
    [event] = await AuditEvent.select().output(load_json=True)
    assert event["action"] == mail_settings.UPDATED
    assert event["after"]["password"] == "changed"
    assert "password" not in event["before"]
    assert SECRET not in json.dumps(event, default=str)

    assert (
        await mail_settings.save(
            settings, msgspec.structs.replace(changes, new_password=None), ACTOR
        )
        == []
    )
    assert await AuditEvent.count() == 1


async def test_a_password_sealed_under_another_key_is_reported(db, settings):
    await mail_settings.save(
        settings, Changes(host="smtp.acme.example", new_password=SECRET), ACTOR
    )
    rotated = msgspec.structs.replace(settings, secret_key=TEST_SECRET + "-rotated")
    stored = await mail_settings.load(rotated)
    assert stored is not None
    assert stored.has_password
    assert stored.password_unreadable
    assert stored.password == ""


async def test_the_cache_loads_refreshes_and_stops(db, settings):
    cache = mail_settings.StoredMailCache(settings, interval=0.01)
    await cache.start()
    try:
        assert cache.current is None
        await mail_settings.save(settings, Changes(host="smtp.acme.example"), ACTOR)
        for _ in range(200):  # refreshed in the background within a few intervals
            if cache.current is not None:
                break
            await asyncio.sleep(0.01)
        assert cache.current is not None
        assert cache.current.host == "smtp.acme.example"
    finally:
        await cache.stop()
    assert cache._task is None
    await cache.stop()  # twice is harmless


# -- delivery -----------------------------------------------------------------------------------


async def test_the_worker_delivers_through_stored_settings(db, settings, smtp_server):
    await mail_settings.save(
        settings,
        Changes(
            host=smtp_server.host,
            port=smtp_server.port,
            security="none",
            sender_name="Acme Billing",
            sender_address="billing@acme.example",
        ),
        ACTOR,
    )
    cache = mail_settings.StoredMailCache(settings)
    await cache.refresh()
    worker = DeliveryWorker(
        settings, make_environment(settings), lambda: smtp_config(settings, None, cache.current)
    )
    await mail_settings.queue_test_email(
        settings, "someone@example.com", ACTOR, subject="Portico test email", sent_by=ACTOR.email
    )
    assert await worker.deliver_due() == 1
    await smtp_server.inbox.wait_for(1)
    [message] = smtp_server.inbox.messages
    assert message["From"] == "Acme Billing <billing@acme.example>"
    assert message["To"] == "someone@example.com"
    assert "owner@acme.example" in body_text(message)
    row = await OutboxMessage.select().first()
    assert row["status"] == "sent"
    assert row["kind"] == "test"


async def test_test_emails_are_limited_per_merchant(db, settings, fake_clock):
    for _ in range(mail_settings.TEST_LIMIT):
        await mail_settings.queue_test_email(
            settings, "a@example.com", ACTOR, subject="Test", sent_by=ACTOR.email
        )
        fake_clock.advance(minutes=1)
    with pytest.raises(mail_settings.TooManyTestEmails) as refused:
        await mail_settings.queue_test_email(
            settings, "a@example.com", ACTOR, subject="Test", sent_by=ACTOR.email
        )
    assert refused.value.retry_after == 5 * 60 + 1
    other = audit.Actor(type="merchant", id="macct_2", email="other@acme.example")
    await mail_settings.queue_test_email(
        settings, "a@example.com", other, subject="Test", sent_by=other.email
    )
    fake_clock.advance(minutes=5, seconds=1)
    await mail_settings.queue_test_email(
        settings, "a@example.com", ACTOR, subject="Test", sent_by=ACTOR.email
    )
