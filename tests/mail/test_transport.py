"""Building a message and sending it over SMTP with aiosmtplib."""

from __future__ import annotations

import asyncio
import socket

import aiosmtplib
import pytest

from app.mail.transport import SmtpConfig, build_message, send
from tests.fixtures.smtp import body_html, body_text

CONFIG = SmtpConfig(host="127.0.0.1", port=25, sender="Portico <no-reply@acme.test>", timeout=5)


def _with(config: SmtpConfig, **changes) -> SmtpConfig:
    fields = {name: getattr(config, name) for name in config.__struct_fields__}
    return SmtpConfig(**{**fields, **changes})


def test_build_message():
    message = build_message(
        CONFIG,
        to="jenny.rosen@example.com",
        subject="Your Acme Cloud sign-in code",
        text="Hello\n",
        html="<p>Hello</p>",
        sender_name="Acme Cloud",
    )
    assert message["From"] == "Acme Cloud <no-reply@acme.test>"
    assert message["To"] == "jenny.rosen@example.com"
    assert message["Subject"] == "Your Acme Cloud sign-in code"
    assert message["Message-ID"].endswith("@acme.test>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert body_text(message) == "Hello\n"
    assert "<p>Hello</p>" in body_html(message)


def test_build_a_text_only_message_with_the_configured_name():
    message = build_message(CONFIG, to="a@example.com", subject="Hi", text="Hi\n", html=None)
    assert message["From"] == "Portico <no-reply@acme.test>"
    assert message.get_content_type() == "text/plain"


async def test_send(smtp_server):
    config = _with(CONFIG, host=smtp_server.host, port=smtp_server.port)
    message = build_message(config, to="a@example.com", subject="Hi", text="Hi\n", html="<b>Hi</b>")
    await send(config, message)
    await smtp_server.inbox.wait_for(1)
    envelope = smtp_server.inbox.envelopes[0]
    assert envelope.mail_from == "no-reply@acme.test"
    assert envelope.rcpt_tos == ["a@example.com"]
    assert smtp_server.inbox.messages[0]["Subject"] == "Hi"


async def test_starttls_is_required_when_configured(smtp_server):
    # The test server offers no STARTTLS: a configured "starttls" must not fall back to clear text.
    config = _with(CONFIG, host=smtp_server.host, port=smtp_server.port, security="starttls")
    message = build_message(config, to="a@example.com", subject="Hi", text="Hi\n", html=None)
    with pytest.raises(aiosmtplib.SMTPException):
        await send(config, message)
    assert smtp_server.inbox.messages == []


async def test_a_refused_connection_raises():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _with(CONFIG, port=port)
    message = build_message(config, to="a@example.com", subject="Hi", text="Hi\n", html=None)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send(config, message)


async def test_the_timeout_is_honoured():
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()  # accepts the connection, never greets
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        config = _with(CONFIG, port=server.sockets[0].getsockname()[1], timeout=0.3)
        message = build_message(config, to="a@example.com", subject="Hi", text="Hi\n", html=None)
        async with asyncio.timeout(3):
            with pytest.raises(aiosmtplib.SMTPTimeoutError):
                await send(config, message)
    finally:
        release.set()
        server.close()
        await server.wait_closed()
