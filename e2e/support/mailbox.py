"""A real SMTP server (aiosmtpd, in its own thread) that the Portico server delivers to."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from e2e.support.server import HOST, free_port

# The passcode email's last line: the origin-bound one-time-code line ("@host #123456").
CODE_LINE = re.compile(r"^@(?P<host>\S+) #(?P<code>\d{6})\s*$", re.MULTILINE)


class Mailbox:
    """Every message the SMTP server accepts, by recipient (lower-cased)."""

    def __init__(self) -> None:
        self._messages: list[tuple[str, EmailMessage]] = []
        self._arrived = threading.Condition()

    # aiosmtpd handler hook (runs in the controller's thread)
    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            for recipient in envelope.rcpt_tos:
                self._messages.append((recipient.lower(), message))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def messages(self, address: str) -> list[EmailMessage]:
        with self._arrived:
            return [m for to, m in self._messages if to == address.lower()]

    def count(self, address: str) -> int:
        return len(self.messages(address))

    def wait_for_message(
        self, address: str, *, since: int = 0, timeout: float = 10.0
    ) -> EmailMessage:
        """The first message to ``address`` after the first ``since`` ones (see ``count``)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [m for to, m in self._messages if to == address.lower()]
                if len(found) > since:
                    return found[since]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no email to {address} within {timeout:.0f} s "
                        f"({len(found)} earlier message(s) to it)"
                    )
                self._arrived.wait(left)

    def wait_for_code(
        self, address: str, *, since: int = 0, timeout: float = 10.0, host: str = HOST
    ) -> str:
        return passcode(self.wait_for_message(address, since=since, timeout=timeout), host=host)


def plain_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the email has no text/plain part"
    return part.get_content()


def passcode(message: EmailMessage, host: str = HOST) -> str:
    """The 6-digit code from the ``@host #code`` line that ends the plain-text body."""
    text = plain_text(message).rstrip()
    lines = text.splitlines()
    match = CODE_LINE.fullmatch(lines[-1]) if lines else None
    assert match is not None, f"the email does not end with '@host #code':\n{text}"
    assert match.group("host") == host, f"code bound to {match.group('host')}, expected {host}"
    return match.group("code")


@contextmanager
def running_smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """aiosmtpd's ``Controller(port=0)`` fails its own start check: pick a free port first."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname=HOST, port=port, server_hostname="mail.e2e.test")
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
