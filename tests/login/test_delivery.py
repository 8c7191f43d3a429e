"""The passcode email, delivered over real SMTP by the delivery worker."""

from __future__ import annotations

import logging
import re

from app.billing.tables import Customer
from app.login import passcodes
from app.mail.tables import OutboxMessage
from tests.fixtures.smtp import body_html, body_text
from tests.helpers import (
    JENNY,
    NOBODY,
    code_of,
    configuration_of,
    make_worker,
    smtp_for,
)


async def _row(attempt_id: str) -> dict:
    row = await OutboxMessage.select().where(OutboxMessage.reference == attempt_id).first()
    assert row is not None
    return row


def _worker(settings, smtp_server):
    return make_worker(settings, smtp_for(settings, smtp_server.host, smtp_server.port))


async def test_a_passcode_email(db, shop, settings, smtp_server):
    configuration = await configuration_of(shop)
    outcome = await passcodes.request_code(settings, configuration, JENNY)
    code = await code_of(settings, outcome.attempt_id)

    assert await _worker(settings, smtp_server).deliver_due() == 1
    await smtp_server.inbox.wait_for(1)
    [message] = smtp_server.inbox.messages
    assert smtp_server.inbox.envelopes[0].rcpt_tos == [JENNY]
    assert message["To"] == JENNY
    assert message["From"] == "Acme Cloud <billing@acme.test>"
    assert "Acme Cloud" in message["Subject"]
    assert code not in message["Subject"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"

    text, html = body_text(message), body_html(message)
    assert code in text
    assert code in html
    assert text.strip().splitlines()[-1] == f"@portal.test #{code}"
    assert f"@portal.test #{code}" in html
    assert "10 minutes" in text
    assert "10 minutes" in html
    assert "Jenny Rosen" in text
    assert "#4f46e5" in html.lower()  # the brand colour

    row = await _row(outcome.attempt_id)
    assert row["status"] == "sent"
    assert row["sealed"] is None
    assert row["sent_at"] is not None
    assert row["attempts"] == 1


async def test_nothing_is_sent_to_an_address_that_is_no_customer(db, shop, settings, smtp_server):
    configuration = await configuration_of(shop)
    outcome = await passcodes.request_code(settings, configuration, NOBODY)
    assert await _worker(settings, smtp_server).deliver_due() == 1
    row = await _row(outcome.attempt_id)
    assert row["status"] == "skipped"
    assert row["sealed"] is None
    assert smtp_server.inbox.envelopes == []
    assert smtp_server.inbox.messages == []


async def test_a_deleted_customer_gets_nothing(db, shop, settings, smtp_server):
    configuration = await configuration_of(shop)
    await Customer.update({Customer.deleted: True}).where(Customer.email == JENNY)
    outcome = await passcodes.request_code(settings, configuration, JENNY)
    await _worker(settings, smtp_server).deliver_due()
    assert (await _row(outcome.attempt_id))["status"] == "skipped"
    assert smtp_server.inbox.messages == []


async def test_a_superseded_code_is_not_sent(db, shop, settings, smtp_server, fake_clock):
    configuration = await configuration_of(shop)
    first = await passcodes.request_code(settings, configuration, JENNY)
    fake_clock.advance(seconds=61)
    second = await passcodes.request_code(settings, configuration, JENNY)
    second_code = await code_of(settings, second.attempt_id)

    assert await _worker(settings, smtp_server).deliver_due() == 2
    assert (await _row(first.attempt_id))["status"] == "skipped"
    assert (await _row(first.attempt_id))["sealed"] is None
    assert (await _row(second.attempt_id))["status"] == "sent"
    [message] = smtp_server.inbox.messages
    assert second_code in body_text(message)


async def test_a_used_code_is_not_sent(db, shop, settings, smtp_server):
    configuration = await configuration_of(shop)
    outcome = await passcodes.request_code(settings, configuration, JENNY)
    code = await code_of(settings, outcome.attempt_id)
    # (Only possible if the code leaked another way; the worker still does not send it.)
    assert (await passcodes.verify(settings, configuration, outcome.attempt_id, code)).verdict == (
        "ok"
    )
    await _worker(settings, smtp_server).deliver_due()
    assert (await _row(outcome.attempt_id))["status"] == "skipped"
    assert smtp_server.inbox.messages == []


async def test_the_code_is_never_logged(db, shop, settings, smtp_server, caplog, fake_clock):
    # (fake_clock: whole-second timestamps, so no microseconds can look like the code)
    caplog.set_level(logging.DEBUG)
    configuration = await configuration_of(shop)
    outcome = await passcodes.request_code(settings, configuration, JENNY)
    code = await code_of(settings, outcome.attempt_id)
    await _worker(settings, smtp_server).deliver_due()
    await smtp_server.inbox.wait_for(1)
    assert code in body_text(smtp_server.inbox.messages[0])

    # "mail.log" is aiosmtpd's logger: the test's SMTP server, standing in for the recipient's.
    ours = [record for record in caplog.records if not record.name.startswith("mail.log")]
    assert caplog.records  # DEBUG capture was on (aiosqlite and aiosmtpd log there)
    for record in ours:
        text = record.getMessage() + repr(record.args) + str(record.exc_text or "")
        assert not re.search(rf"(?<!\d){code}(?!\d)", text), record.name
