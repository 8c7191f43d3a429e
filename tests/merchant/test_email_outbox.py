"""The outbox page: every status explained in plain words, newest first, paginated, and never
a passcode (neither while it is queued nor after)."""

from __future__ import annotations

from datetime import timedelta

from app import clock
from app.mail.tables import OutboxMessage
from app.mail.transport import SmtpConfig
from tests.helpers import HX, JENNY, NOBODY, code_of, smtp_for, without_html
from tests.merchant.support import Elements, signed_in

EXPLANATIONS = {
    "queued": "waiting to be sent",
    "sending": "being handed to the mail server right now",
    "sent": "the mail server accepted it for delivery",
    "failed": "every attempt failed",
    "skipped": "no customer has this address, so nothing was sent",
    "expired": "ran out before it could be sent",
}


async def _message(status: str, n: int = 0, **extra) -> int:
    now = clock.now()
    rows = await OutboxMessage.insert(
        OutboxMessage(
            kind=extra.pop("kind", "test"),
            to_address=extra.pop("to_address", f"person{n}@example.com"),
            subject=extra.pop("subject", f"Message {n}"),
            template="test",
            status=status,
            attempts=extra.pop("attempts", 1),
            created_at=extra.pop("created_at", now - timedelta(minutes=n)),
            **extra,
        )
    )
    return rows[0]["id"]


async def test_the_outbox_lists_every_status_with_its_meaning(merchant):
    await signed_in(merchant)
    for n, status in enumerate(EXPLANATIONS):
        await _message(
            status, n, last_error="SMTPRecipientsRefused: 550 no such user" if n else None
        )
    response = await merchant.client.get("/merchant/email/outbox")
    assert response.status_code == 200
    html = response.text
    for header in ("Created", "Recipient", "Kind", "Subject", "Status", "Attempts", "Last error"):
        assert f'<th scope="col">{header}</th>' in html or f'class="num">{header}</th>' in html
    for status, meaning in EXPLANATIONS.items():
        assert f'class="me-status me-status--{status}"' in html, status
        assert meaning in html, status
    assert "SMTPRecipientsRefused: 550 no such user" in html
    # Newest first.
    assert html.index("person0@example.com") < html.index("person5@example.com")
    assert 'aria-current="page">Outbox</a>' in html
    assert 'aria-current="page">Email delivery</a>' in html


async def test_a_passcode_is_never_shown(merchant, smtp_server):
    await signed_in(merchant)
    for email in (JENNY, NOBODY):
        assert (await merchant.portal.request_code(email)).status_code == 303
    attempt = await merchant.portal.latest_attempt(JENNY)
    code = await code_of(merchant.portal.settings, attempt)
    response = await merchant.client.get("/merchant/email/outbox")
    assert response.status_code == 200
    assert "Sign-in code" in response.text
    assert JENNY in response.text
    assert code not in response.text
    assert attempt not in response.text  # nor anything else from the message's context
    # Delivered (Jenny) and skipped (nobody has that address): still no code on the page.
    worker = merchant.portal.app.state.worker
    config: SmtpConfig = smtp_for(merchant.portal.settings, smtp_server.host, smtp_server.port)
    worker.smtp = lambda: config
    assert await worker.deliver_due() == 2
    await smtp_server.inbox.wait_for(1)
    response = await merchant.client.get("/merchant/email/outbox")
    assert code not in response.text
    assert "no customer has this address, so nothing was sent" in response.text
    assert "the mail server accepted it for delivery" in response.text


async def test_the_outbox_is_paginated_and_filterable(merchant):
    await signed_in(merchant)
    for n in range(30):
        await _message("sent" if n % 2 else "failed", n)
    first = await merchant.client.get("/merchant/email/outbox")
    assert "Page 1 of 2" in first.text
    assert "person0@example.com" in first.text
    assert "person29@example.com" not in first.text
    links = {a.get("rel"): a for a in Elements(first.text).named("a") if a.get("rel")}
    assert links["next"]["href"] == "/merchant/email/outbox?page=2"
    second = await merchant.client.get("/merchant/email/outbox?page=2")
    assert "person29@example.com" in second.text
    assert "person0@example.com" not in second.text
    assert (await merchant.client.get("/merchant/email/outbox?page=abc")).status_code == 200
    assert "Page 2 of 2" in (await merchant.client.get("/merchant/email/outbox?page=99")).text
    failed = await merchant.client.get("/merchant/email/outbox?status=failed")
    assert "person0@example.com" in failed.text
    assert "person1@example.com" not in failed.text
    assert "Page 1 of 1" not in failed.text
    assert (await merchant.client.get("/merchant/email/outbox?status=nonsense")).status_code == 200


async def test_the_outbox_as_an_htmx_fragment(merchant):
    await signed_in(merchant)
    await _message("queued")
    response = await merchant.client.get("/merchant/email/outbox", headers=HX)
    assert response.status_code == 200
    assert without_html(response.text)
    assert "<title>Outbox \N{EN DASH} Portico</title>" in response.text
    assert response.headers["vary"] == "HX-Request"


async def test_recipients_and_errors_are_escaped(merchant):
    await signed_in(merchant)
    await _message(
        "failed",
        to_address="<script>alert(1)</script>@example.com",
        subject='"><img src=x onerror=alert(1)>',
        last_error="<b>boom</b>",
    )
    html = (await merchant.client.get("/merchant/email/outbox")).text
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;b&gt;boom&lt;/b&gt;" in html
