"""The demo's built-in mail catcher: a real SMTP server (aiosmtpd) on loopback that keeps the last
messages in memory, and an inbox page at ``/_dev/mail``. Mail still travels over SMTP, exactly as
it would to a real server. Only mounted by ``portico demo`` (never in ``serve``)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import deque
from datetime import UTC, datetime
from email.message import EmailMessage

import msgspec
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from app.web.htmx import page

KEEP = 200
# The message's own HTML is shown as it would be in a mail client: inline styles allowed,
# nothing else (no scripts, no remote images, no forms).
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


class CaughtMessage(msgspec.Struct):
    number: int
    received: datetime
    sender: str
    to: str
    subject: str
    text: str
    html: str


class MailCatcher:
    def __init__(self) -> None:
        self.messages: deque[CaughtMessage] = deque(maxlen=KEEP)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._count = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="portico-mail-catcher"), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed: EmailMessage = email.message_from_bytes(  # type: ignore[assignment]
            envelope.content, policy=email.policy.default
        )
        text_part = parsed.get_body(preferencelist=("plain",))
        html_part = parsed.get_body(preferencelist=("html",))
        self._count += 1
        self.messages.appendleft(
            CaughtMessage(
                number=self._count,
                received=datetime.now(UTC),
                sender=str(parsed["From"] or ""),
                to=str(parsed["To"] or ""),
                subject=str(parsed["Subject"] or ""),
                text=text_part.get_content() if text_part else "",
                html=html_part.get_content() if html_part else "",
            )
        )
        return "250 Message accepted"

    def find(self, number: FromPath[int]) -> CaughtMessage | None:
        return next((m for m in self.messages if m.number == number), None)


def inbox_controller(catcher: MailCatcher) -> type[Controller]:
    class InboxController(Controller):
        path = "/_dev/mail"

        @get("/", name="dev:inbox")
        async def inbox(self, request: Request) -> Template:
            return page(
                request,
                "dev/inbox.html",
                fragment="main_content",
                context={"messages": list(catcher.messages), "brand": {"business_name": "Portico"}},
            )

        @get("/{number:int}", name="dev:message")
        async def message(self, request: Request, number: FromPath[int]) -> Template:
            found = catcher.find(number)
            if found is None:
                raise NotFoundException()
            return page(
                request,
                "dev/message.html",
                fragment="main_content",
                context={"message": found, "brand": {"business_name": "Portico"}},
            )

        @get("/{number:int}/html", name="dev:message_html")
        async def message_html(self, number: FromPath[int]) -> Response[str]:
            found = catcher.find(number)
            if found is None or not found.html:
                raise NotFoundException()
            return Response(
                found.html,
                media_type="text/html; charset=utf-8",
                headers={"Content-Security-Policy": HTML_CSP, "X-Frame-Options": "SAMEORIGIN"},
            )

    return InboxController
