"""Sending one message over SMTP with aiosmtplib (explicit timeout; STARTTLS or implicit TLS as
configured; credentials only when set).

``timeout`` bounds each step (connect, every command and its reply); ``deadline`` bounds the whole
conversation, so a server that answers every step just in time (or trickles its replies) cannot
keep a delivery going for minutes. The worker's lease is longer than any deadline
(``app.mail.worker.LEASE``), so a message is never claimed twice while it is being sent.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr

import aiosmtplib
import msgspec


class SmtpConfig(msgspec.Struct, frozen=True):
    host: str
    port: int
    security: str = "none"  # none | starttls | tls
    username: str = ""
    password: str = ""
    timeout: float = 10.0
    sender: str = "Portico <no-reply@localhost>"

    @property
    def deadline(self) -> float:
        """Seconds for the whole conversation: three steps' worth, at most ``MAX_DEADLINE``."""
        return min(3 * self.timeout, MAX_DEADLINE)


MAX_DEADLINE = 30.0  # seconds; below the worker's lease (60 s)


def build_message(
    config: SmtpConfig, *, to: str, subject: str, text: str, html: str | None, sender_name: str = ""
) -> EmailMessage:
    message = EmailMessage()
    name, address = parseaddr(config.sender)
    message["From"] = formataddr((sender_name or name, address))
    message["To"] = to
    message["Subject"] = subject
    domain = address.rsplit("@", 1)[-1] if "@" in address else "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


async def send(config: SmtpConfig, message: EmailMessage) -> None:
    """Raises ``aiosmtplib.SMTPException`` (refused, timed out per step, rejected) or
    ``TimeoutError`` (the whole conversation took longer than ``config.deadline``)."""
    async with asyncio.timeout(config.deadline):
        await _send(config, message)


async def _send(config: SmtpConfig, message: EmailMessage) -> None:
    await aiosmtplib.send(
        message,
        hostname=config.host,
        port=config.port,
        username=config.username or None,
        password=config.password or None,
        use_tls=config.security == "tls",
        start_tls=config.security == "starttls",
        timeout=config.timeout,
    )
