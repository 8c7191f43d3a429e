"""The email delivery page: SMTP settings (password encrypted, never shown), environment
precedence, validation, the activity log, and the test email through the real outbox and worker."""

from __future__ import annotations

import json
import re
import socket
from urllib.parse import urlsplit

import msgspec
import pytest

from app.audit.tables import AuditEvent
from app.mail import settings as mail_settings
from app.mail.tables import MailSettings, OutboxMessage
from tests.fixtures.smtp import body_html, body_text
from tests.helpers import HX, JENNY, without_html
from tests.merchant.support import COOKIE, EMAIL, Elements, events, open_merchant, signed_in
from tests.test_i18n import _untranslated, pseudo_locale  # noqa: F401  (fixture)

SECRET = "s3cret-Pa55word-for-smtp"
VALID = {
    "host": "smtp.acme.example",
    "port": "587",
    "security": "starttls",
    "username": "postmaster@acme.example",
    "password": SECRET,
    "sender_name": "Acme Billing",
    "sender_address": "billing@acme.example",
}
LABELS = {
    "host": "SMTP host",
    "port": "Port",
    "security": "Security",
    "username": "Username",
    "password": "Password",
    "sender_name": "Sender name",
    "sender_address": "Sender address",
}


@pytest.fixture
def settings(settings):
    """The tests' settings with the default sender (a PORTICO_MAIL_FROM of its own would make
    the sender fields read-only)."""
    return msgspec.structs.replace(settings, mail_from=mail_settings.DEFAULT_MAIL_FROM)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _stored() -> dict:
    row = await MailSettings.select().first()
    assert row is not None
    return row


def _inputs(html: str) -> dict[str, dict]:
    return {attrs.get("id"): attrs for attrs in Elements(html).named("input")}


# -- access -------------------------------------------------------------------------------------


async def test_the_pages_need_a_merchant_session(merchant):
    for url in ("/merchant/email", "/merchant/email/outbox", "/merchant/email/test"):
        response = await merchant.client.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/merchant/sign-in")
    for url in ("/merchant/email", "/merchant/email/test"):
        response = await merchant.post(url, {**VALID, "test_to": JENNY})
        assert response.status_code == 303, url
        assert urlsplit(response.headers["location"]).path == "/merchant/sign-in"
    assert await MailSettings.count() == 0
    assert await OutboxMessage.count() == 0


async def test_a_customer_session_is_refused(merchant):
    token = await merchant.portal.sign_in(JENNY)
    response = await merchant.client.get("/merchant/email")
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/merchant/sign-in"
    merchant.client.cookies.set(COOKIE, token, domain="portal.test")
    for url in ("/merchant/email", "/merchant/email/outbox"):
        response = await merchant.client.get(url)
        assert response.status_code == 303, url
    response = await merchant.post("/merchant/email", VALID)
    assert response.status_code == 303
    assert await MailSettings.count() == 0


async def test_posts_need_the_csrf_token(merchant):
    await signed_in(merchant)
    for url in ("/merchant/email", "/merchant/email/test"):
        response = await merchant.client.post(url, data={**VALID, "test_to": JENNY})
        assert response.status_code == 403, url
    assert await MailSettings.count() == 0
    assert await OutboxMessage.count() == 0


# -- the page -----------------------------------------------------------------------------------


async def test_the_page_has_labelled_fields_and_an_empty_password(merchant):
    await signed_in(merchant)
    response = await merchant.client.get("/merchant/email")
    assert response.status_code == 200
    html = response.text
    for name, label in LABELS.items():
        assert f'<label class="field__label" for="{name}">{label}</label>' in html
    inputs = _inputs(html)
    assert inputs["password"]["type"] == "password"
    assert inputs["password"]["value"] == ""
    assert inputs["password"]["autocomplete"] == "new-password"
    assert inputs["port"]["value"] == "587"
    assert "remove_password" not in inputs  # nothing stored to remove
    assert ">Save</button>" in html
    assert ">Send test email</button>" in html
    assert inputs["test_to"]["value"] == EMAIL  # defaults to the signed-in merchant
    assert 'aria-current="page">Email delivery</a>' in html
    assert "PORTICO_SMTP_HOST" not in html.split("<main", 1)[1].split("No mail server", 1)[0]
    assert response.headers["cache-control"] == "no-store"


async def test_saving_stores_the_password_encrypted_and_never_shows_it(merchant):
    await signed_in(merchant)
    response = await merchant.post("/merchant/email", VALID)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/merchant/email"
    row = await _stored()
    assert row["host"] == "smtp.acme.example"
    assert row["port"] == 587
    assert row["username"] == "postmaster@acme.example"
    assert row["sender_address"] == "billing@acme.example"
    # Encrypted at rest: not in any column, and only this purpose's key reads it.
    assert SECRET not in json.dumps(row, default=str)
    assert row["password_sealed"]
    assert mail_settings.unseal_password(merchant.portal.settings, row["password_sealed"]) == SECRET
    from app.mail import service as mail

    assert mail.unseal(merchant.portal.settings, row["password_sealed"]) == {}
    # Never rendered back.
    page = await merchant.client.get("/merchant/email")
    assert "Email delivery settings saved." in page.text
    assert SECRET not in page.text
    inputs = _inputs(page.text)
    assert inputs["password"]["value"] == ""
    assert "Leave empty to keep the current password." in page.text
    assert "A password is stored." in page.text
    assert '<label for="remove_password">Remove the stored password</label>' in page.text
    assert inputs["host"]["value"] == "smtp.acme.example"
    # The activity log records that the password changed, never the password.
    [event] = await events(mail_settings.UPDATED)
    assert event["actor_email"] == EMAIL
    assert event["after"]["password"] == "changed"
    assert event["after"]["host"] == "smtp.acme.example"
    assert event["before"]["host"] == ""
    audit_rows = await AuditEvent.select()
    assert SECRET not in json.dumps(audit_rows, default=str)
    # The worker's cache of this process follows at once.
    assert merchant.portal.app.state.mail_settings.current.password == SECRET


async def test_an_empty_password_keeps_it_and_the_checkbox_removes_it(merchant):
    await signed_in(merchant)
    assert (await merchant.post("/merchant/email", VALID)).status_code == 303
    sealed = (await _stored())["password_sealed"]
    response = await merchant.post("/merchant/email", {**VALID, "password": "", "port": "2525"})
    assert response.status_code == 303
    row = await _stored()
    assert row["password_sealed"] == sealed
    assert row["port"] == 2525
    second = (await events(mail_settings.UPDATED))[-1]
    assert second["before"] == {"port": 587}
    assert second["after"] == {"port": 2525}
    # Saving the same values again changes nothing and records nothing.
    await merchant.post("/merchant/email", {**VALID, "password": "", "port": "2525"})
    assert len(await events(mail_settings.UPDATED)) == 2

    response = await merchant.post(
        "/merchant/email", {**VALID, "password": "", "port": "2525", "remove_password": "1"}
    )
    assert response.status_code == 303
    assert (await _stored())["password_sealed"] is None
    assert (await events(mail_settings.UPDATED))[-1]["after"] == {"password": "removed"}
    page = await merchant.client.get("/merchant/email")
    assert "remove_password" not in _inputs(page.text)


async def test_saving_with_htmx_answers_with_hx_location(merchant):
    await signed_in(merchant)
    response = await merchant.post("/merchant/email", VALID, htmx=True)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Location"]) == {
        "path": "/merchant/email",
        "target": "#main-content",
    }
    fragment = await merchant.client.get("/merchant/email", headers=HX)
    assert without_html(fragment.text)
    assert "Email delivery settings saved." in fragment.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("host", "", "Enter the SMTP host"),
        ("host", "smtp example.com", "can only contain letters, digits, hyphens and dots"),
        ("host", "smtp_relay.example.com", "can only contain letters, digits, hyphens and dots"),
        ("host", "-smtp.example.com", "can only contain letters, digits, hyphens and dots"),
        ("host", "smtp.example.com\r\nX: y", "can only contain letters, digits, hyphens and dots"),
        ("host", "<script>", "can only contain letters, digits, hyphens and dots"),
        ("port", "", "Enter the port"),
        ("port", "0", "from 1 to 65535"),
        ("port", "65536", "from 1 to 65535"),
        ("port", "25a", "from 1 to 65535"),
        ("port", "-1", "from 1 to 65535"),
        ("security", "ssl", "Choose how the connection is secured."),
        ("username", "a\nb", "cannot contain line breaks"),
        ("sender_name", "Acme\r\nBcc: x@example.com", "cannot contain line breaks"),
        ("sender_name", "x" * 129, "128 characters or fewer"),
        ("sender_address", "", "Enter the sender address"),
        ("sender_address", "billing at acme", "like billing@example.com"),
        ("sender_address", "a@b.example\r\nBcc: x@example.com", "like billing@example.com"),
    ],
)
async def test_each_field_is_validated_with_a_message(merchant, field, value, message):
    await signed_in(merchant)
    response = await merchant.post("/merchant/email", {**VALID, field: value})
    assert response.status_code == 422
    html = response.text
    assert "<title>Error: Email delivery \N{EN DASH} Portico</title>" in html
    assert "There is a problem" in html
    assert f'<a href="#{field}">' in html
    assert f'id="{field}-error"' in html
    assert message in html
    assert SECRET not in html  # not even the password just typed
    assert "<script>" not in html
    assert await MailSettings.count() == 0
    assert await events(mail_settings.UPDATED) == []


async def test_a_new_password_and_removing_it_at_once_is_refused(merchant):
    await signed_in(merchant)
    await merchant.post("/merchant/email", VALID)
    response = await merchant.post("/merchant/email", {**VALID, "remove_password": "1"})
    assert response.status_code == 422
    assert "Either enter a new password or remove the stored one, not both." in response.text
    assert 'id="remove_password" name="remove_password" type="checkbox" value="1" checked' in (
        response.text
    )


@pytest.mark.parametrize(
    "host", ["smtp.example.com", "127.0.0.1", "::1", "[2001:db8::1]", "mail.bücher.example"]
)
async def test_accepted_hosts(merchant, host):
    await signed_in(merchant)
    response = await merchant.post("/merchant/email", {**VALID, "host": host})
    assert response.status_code == 303, response.text
    assert (await _stored())["host"] == host


# -- the environment takes precedence ---------------------------------------------------------


async def test_environment_values_are_read_only(settings, demo, account):
    env = msgspec.structs.replace(
        settings,
        smtp_host="smtp.env.example",
        smtp_port=2525,
        smtp_security="tls",
        smtp_username="env-user",
        smtp_password="env-password-never-shown",
        mail_from="Env Sender <env@acme.test>",
    )
    async with open_merchant(env, demo) as merchant:
        await signed_in(merchant)
        page = await merchant.client.get("/merchant/email")
        html = page.text
        assert page.status_code == 200
        assert "PORTICO_SMTP_HOST" in html
        assert "take precedence" in html
        inputs = _inputs(html)
        for name in LABELS:
            assert "readonly" in inputs[name], name
            assert "name" not in inputs[name], name  # shown, never submitted
            assert f'<label class="field__label" for="{name}">{LABELS[name]}</label>' in html
        assert inputs["host"]["value"] == "smtp.env.example"
        assert inputs["port"]["value"] == "2525"
        assert inputs["security"]["value"] == "TLS (usually port 465)"
        assert inputs["username"]["value"] == "env-user"
        assert inputs["password"]["value"] == "Set"
        assert inputs["sender_name"]["value"] == "Env Sender"
        assert inputs["sender_address"]["value"] == "env@acme.test"
        assert "env-password-never-shown" not in html
        assert "Set by the environment variable PORTICO_SMTP_PASSWORD" in html
        assert "Set by the environment variable PORTICO_MAIL_FROM" in html
        assert ">Save</button>" not in html  # nothing here can be changed
        # What the browser sends (no field: all are read-only), and a forged post, change
        # nothing the environment controls.
        assert (await merchant.post("/merchant/email", {})).status_code == 303
        response = await merchant.post("/merchant/email", VALID)
        assert response.status_code == 303
        assert await events(mail_settings.UPDATED) == []
        row = await MailSettings.select().first()
        assert row is None or (row["host"] == "" and row["password_sealed"] is None)


async def test_the_worker_uses_the_environment_before_stored_settings(
    settings, demo, account, smtp_server
):
    env = msgspec.structs.replace(
        settings,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        mail_from="Env Sender <env@acme.test>",
    )
    async with open_merchant(env, demo) as merchant:
        await signed_in(merchant)
        # Settings stored earlier (say, before the variables were set) point elsewhere.
        await MailSettings.insert(
            MailSettings(
                id="smtp",
                host="127.0.0.1",
                port=_closed_port(),
                security="none",
                sender_address="stored@acme.test",
            )
        )
        await merchant.portal.app.state.mail_settings.refresh()
        response = await merchant.post("/merchant/email/test", {"test_to": JENNY})
        assert response.status_code == 303
        assert await merchant.portal.app.state.worker.deliver_due() == 1
        await smtp_server.inbox.wait_for(1)
        [message] = smtp_server.inbox.messages
        assert message["From"] == "Env Sender <env@acme.test>"
        row = await OutboxMessage.select().first()
        assert row["status"] == "sent"


async def test_only_the_sender_can_come_from_the_environment(settings, demo, account):
    env = msgspec.structs.replace(settings, mail_from="Env Sender <env@acme.test>")
    async with open_merchant(env, demo) as merchant:
        await signed_in(merchant)
        inputs = _inputs((await merchant.client.get("/merchant/email")).text)
        assert "readonly" not in inputs["host"]
        assert "readonly" in inputs["sender_address"]
        data = {**VALID, "sender_address": "forged@evil.example"}
        assert (await merchant.post("/merchant/email", data)).status_code == 303
        row = await _stored()
        assert row["host"] == "smtp.acme.example"
        assert row["sender_address"] == ""  # the environment's field was not read


# -- test email ---------------------------------------------------------------------------------


async def test_a_test_email_is_queued_and_delivered_through_the_stored_settings(
    merchant, smtp_server
):
    await signed_in(merchant)
    stored = {
        **VALID,
        "host": smtp_server.host,
        "port": str(smtp_server.port),
        "security": "none",
        "username": "",
        "password": "",
    }
    assert (await merchant.post("/merchant/email", stored)).status_code == 303
    response = await merchant.post("/merchant/email/test", {"test_to": " Someone@Example.com "})
    assert response.status_code == 303
    assert response.headers["location"] == "/merchant/email/outbox"
    outbox = await merchant.client.get("/merchant/email/outbox")
    assert "Test email queued to someone@example.com." in outbox.text
    assert "Queued" in outbox.text
    [row] = await OutboxMessage.select()
    assert row["kind"] == "test"
    assert row["to_address"] == "someone@example.com"
    assert row["reference"] == (await events("merchant.signed_in"))[0]["actor_id"]
    [event] = await events(mail_settings.TEST_QUEUED)
    assert event["after"] == {"to": "someone@example.com"}

    assert await merchant.portal.app.state.worker.deliver_due() == 1
    await smtp_server.inbox.wait_for(1)
    [message] = smtp_server.inbox.messages
    assert message["To"] == "someone@example.com"
    assert message["From"] == "Acme Billing <billing@acme.example>"
    assert message["Subject"] == "Portico test email"
    assert "This is a test email from Portico" in body_text(message)
    assert EMAIL in body_text(message)
    assert "This is a test email from Portico" in body_html(message)
    outbox = await merchant.client.get("/merchant/email/outbox")
    assert "Sent" in outbox.text
    assert "the mail server accepted it for delivery" in outbox.text


async def test_test_emails_are_rate_limited_per_merchant(merchant, fake_clock):
    await signed_in(merchant)
    for _ in range(mail_settings.TEST_LIMIT):
        response = await merchant.post("/merchant/email/test", {"test_to": JENNY})
        assert response.status_code == 303
        fake_clock.advance(seconds=30)
    refused = await merchant.post("/merchant/email/test", {"test_to": JENNY})
    assert refused.status_code == 429
    assert "You can send 5 test emails every 10 minutes. Try again in 8 minutes." in refused.text
    assert 7 * 60 < int(refused.headers["retry-after"]) <= 8 * 60
    assert await OutboxMessage.count() == mail_settings.TEST_LIMIT
    fake_clock.advance(minutes=8)  # the first one has left the window
    assert (await merchant.post("/merchant/email/test", {"test_to": JENNY})).status_code == 303
    assert await OutboxMessage.count() == mail_settings.TEST_LIMIT + 1


async def test_the_test_address_is_validated(merchant):
    await signed_in(merchant)
    for value, message in (
        ("", "Enter the email address to send the test email to."),
        ("not an address", "Enter an email address like name@example.com."),
        ("a@b.example\r\nBcc: x@evil.example", "Enter an email address like name@example.com."),
    ):
        response = await merchant.post("/merchant/email/test", {"test_to": value})
        assert response.status_code == 422, value
        assert message in response.text
        assert '<a href="#test_to">' in response.text
    assert await OutboxMessage.count() == 0
    # Reloading the address bar after the re-rendered form lands on the page.
    reload = await merchant.client.get("/merchant/email/test")
    assert reload.status_code == 303
    assert reload.headers["location"] == "/merchant/email"


async def test_without_any_server_the_message_waits_with_a_reason(merchant):
    await signed_in(merchant)
    page = await merchant.client.get("/merchant/email")
    assert "No mail server is set" in page.text
    await merchant.post("/merchant/email/test", {"test_to": JENNY})
    assert await merchant.portal.app.state.worker.deliver_due() == 1
    row = await OutboxMessage.select().first()
    assert row["status"] == "queued"
    assert "no SMTP server is configured" in row["last_error"]
    outbox = await merchant.client.get("/merchant/email/outbox")
    assert "no SMTP server is configured" in outbox.text


# -- translations -------------------------------------------------------------------------------

# Data on these pages: addresses, dates (Babel-formatted), hosts, counts, error text.
DATA = re.compile(
    r"^([\w.+-]+@[\w.-]+|\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC|[\w.-]+\.example|\d+"
    r"|[A-Za-z]+Error: .*|—)$"
)


async def test_the_pages_have_no_untranslated_text(merchant, pseudo_locale):  # noqa: F811
    await signed_in(merchant)
    pages = [
        await merchant.client.get("/merchant/email"),
        await merchant.post("/merchant/email", {**VALID, "port": "x"}),
    ]
    assert (await merchant.post("/merchant/email", VALID)).status_code == 303
    pages.append(await merchant.client.get("/merchant/email"))  # flash, stored password
    assert (await merchant.post("/merchant/email/test", {"test_to": JENNY})).status_code == 303
    await merchant.portal.app.state.worker.deliver_due()  # fails: the host does not exist
    pages.append(await merchant.client.get("/merchant/email/outbox"))
    pages.append(await merchant.post("/merchant/email/test", {"test_to": "nope"}))
    for response in pages:
        assert [t for t in _untranslated(response.text) if not DATA.match(t)] == []
