"""Sending one message over SMTP with aiosmtplib (explicit timeout; STARTTLS or implicit TLS as
configured; credentials only when set)."""

from __future__ import annotations

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
