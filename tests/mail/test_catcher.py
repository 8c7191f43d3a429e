"""The demo's mail catcher: a real SMTP server in memory, and its inbox pages."""

from __future__ import annotations

import re
from email.message import EmailMessage

import aiosmtplib

from app.mail.catcher import HTML_CSP, MailCatcher
from app.settings import Settings
from tests.helpers import JENNY, open_portal


def _message(subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Acme Cloud <billing@acme.test>"
    message["To"] = JENNY
    message["Subject"] = subject
    message.set_content("Plain hello\n")
    message.add_alternative("<p>HTML hello</p>", subtype="html")
    return message


async def test_the_catcher_keeps_what_it_receives():
    catcher = MailCatcher()
    await catcher.start()
    try:
        assert catcher.port
        await aiosmtplib.send(_message("First"), hostname="127.0.0.1", port=catcher.port, timeout=5)
        await aiosmtplib.send(
            _message("Second"), hostname="127.0.0.1", port=catcher.port, timeout=5
        )
    finally:
        await catcher.stop()
    assert [m.subject for m in catcher.messages] == ["Second", "First"]  # newest first
    first = catcher.find(1)
    assert first is not None
    assert first.to == JENNY
    assert first.sender == "Acme Cloud <billing@acme.test>"
    assert first.text.splitlines() == ["Plain hello"]
    assert "<p>HTML hello</p>" in first.html
    assert catcher.find(99) is None


def _with_catcher(settings: Settings) -> Settings:
    fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
    return Settings(**{**fields, "mail_catcher": True})


async def test_the_demo_inbox_shows_the_passcode_email(db, shop, settings):
    async with open_portal(_with_catcher(settings), shop) as portal:
        response = await portal.request_code(JENNY)
        assert response.status_code == 303
        assert await portal.app.state.worker.deliver_due() == 1
        catcher = portal.app.state.catcher
        [caught] = list(catcher.messages)
        code = re.search(r"#(\d{6})$", caught.text.strip()).group(1)  # type: ignore[union-attr]

        inbox = await portal.client.get("/_dev/mail")
        assert inbox.status_code == 200
        assert caught.subject in inbox.text
        page = await portal.client.get(f"/_dev/mail/{caught.number}")
        assert page.status_code == 200
        assert code in page.text
        html = await portal.client.get(f"/_dev/mail/{caught.number}/html")
        assert html.status_code == 200
        assert html.headers["content-security-policy"] == HTML_CSP
        assert code in html.text
        assert (await portal.client.get("/_dev/mail/999")).status_code == 404


async def test_the_inbox_is_not_mounted_outside_the_demo(db, shop, settings):
    async with open_portal(settings, shop) as portal:
        assert portal.app.state.catcher is None
        assert (await portal.client.get("/_dev/mail")).status_code == 404
