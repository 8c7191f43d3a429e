"""Email delivery settings: the SMTP server and sender the merchant stores on the settings page,
and which configuration the delivery worker uses.

Precedence, group by group:

- **server** (host, port, security, username, password): ``PORTICO_SMTP_HOST`` set → all of it
  comes from the ``PORTICO_SMTP_*`` variables; else the stored settings when they name a host;
  else the demo's mail catcher; else nothing (messages wait and fail with a reason).
- **sender** (name and address): ``PORTICO_MAIL_FROM`` set → it; else the stored sender when it
  has an address; else the default ``PORTICO_MAIL_FROM`` value.

The password is encrypted at rest with a key derived from ``PORTICO_SECRET_KEY`` for this purpose
only (the outbox seal uses another), never rendered back, and the activity log records only that
it changed. The worker asks for its configuration synchronously, so each app keeps the stored row
in a ``StoredMailCache``: loaded at start-up, refreshed after a save and every 30 seconds (other
instances see a change within that time).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from typing import Any, Literal

import msgspec
from cryptography.fernet import Fernet, InvalidToken

from app import clock, db
from app.audit import service as audit
from app.mail import service as mail
from app.mail.tables import MailSettings, OutboxMessage
from app.mail.transport import SmtpConfig
from app.merchant.tables import MerchantAccount
from app.settings import Settings

log = logging.getLogger("portico.mail")

ROW_ID = "smtp"
SECURITY = ("starttls", "tls", "none")
DEFAULT_PORT = 587
DEFAULT_MAIL_FROM = Settings().mail_from
REFRESH_SECONDS = 30.0
UPDATED = "mail.settings_updated"
TEST_QUEUED = "mail.test_email_queued"
TEST_KIND = "test"
TEST_LIMIT = 5
TEST_WINDOW = timedelta(minutes=10)

SERVER_FIELDS = ("host", "port", "security", "username", "password")
SENDER_FIELDS = ("sender_name", "sender_address")
ENV_NAMES = {
    "host": "PORTICO_SMTP_HOST",
    "port": "PORTICO_SMTP_PORT",
    "security": "PORTICO_SMTP_SECURITY",
    "username": "PORTICO_SMTP_USERNAME",
    "password": "PORTICO_SMTP_PASSWORD",
    "sender_name": "PORTICO_MAIL_FROM",
    "sender_address": "PORTICO_MAIL_FROM",
}
# What the activity log keeps of a change (the password only as "changed" / "removed").
AUDITED = ("host", "port", "security", "username", "sender_name", "sender_address")

Source = Literal["environment", "stored", "catcher", "none"]


class StoredMail(msgspec.Struct, frozen=True, kw_only=True):
    host: str = ""
    port: int = DEFAULT_PORT
    security: str = "starttls"
    username: str = ""
    password: str = ""  # decrypted; "" when none is stored or it cannot be read
    has_password: bool = False
    password_unreadable: bool = False  # stored, but PORTICO_SECRET_KEY has changed since
    sender_name: str = ""
    sender_address: str = ""
    updated_at: datetime | None = None


class Changes(msgspec.Struct, frozen=True, kw_only=True):
    """Validated values from the page. Fields the environment controls are left as None."""

    host: str | None = None
    port: int | None = None
    security: str | None = None
    username: str | None = None
    new_password: str | None = None  # None or "": keep
    remove_password: bool = False
    sender_name: str | None = None
    sender_address: str | None = None


# -- the password at rest ---------------------------------------------------------------------
def _fernet(settings: Settings) -> Fernet:
    key = hmac.new(settings.secret_key.encode(), b"portico/smtp-password", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal_password(settings: Settings, password: str) -> str:
    return _fernet(settings).encrypt(password.encode()).decode()


def unseal_password(settings: Settings, sealed: str | None) -> str | None:
    """The password, "" when none is stored, None when it cannot be decrypted."""
    if not sealed:
        return ""
    try:
        return _fernet(settings).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


# -- what comes from where ----------------------------------------------------------------------
def env_fields(settings: Settings) -> dict[str, str]:
    """``{field: environment variable}`` for every field the environment controls."""
    locked: dict[str, str] = {}
    if settings.smtp_host:
        locked.update({name: ENV_NAMES[name] for name in SERVER_FIELDS})
    if settings.mail_from != DEFAULT_MAIL_FROM:
        locked.update({name: ENV_NAMES[name] for name in SENDER_FIELDS})
    return locked


def env_values(settings: Settings) -> dict[str, Any]:
    """The environment's values for the locked fields (never the password)."""
    name, address = parseaddr(settings.mail_from)
    return {
        "host": settings.smtp_host,
        "port": settings.smtp_port,
        "security": settings.smtp_security,
        "username": settings.smtp_username,
        "has_password": bool(settings.smtp_password),
        "sender_name": name,
        "sender_address": address,
    }


def server_source(settings: Settings, stored: StoredMail | None, catcher_port: int = 0) -> Source:
    if settings.smtp_host:
        return "environment"
    if stored is not None and stored.host:
        return "stored"
    if catcher_port:
        return "catcher"
    return "none"


def sender(settings: Settings, stored: StoredMail | None) -> str:
    if settings.mail_from != DEFAULT_MAIL_FROM or stored is None or not stored.sender_address:
        return settings.mail_from
    return formataddr((stored.sender_name, stored.sender_address))


def effective(
    settings: Settings, stored: StoredMail | None, catcher_port: int = 0
) -> SmtpConfig | None:
    """The configuration the worker sends with, or None when no server is configured."""
    source = server_source(settings, stored, catcher_port)
    from_ = sender(settings, stored)
    if source == "environment":
        return SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
            sender=from_,
        )
    if source == "stored" and stored is not None:
        return SmtpConfig(
            host=stored.host,
            port=stored.port,
            security=stored.security if stored.security in SECURITY else "starttls",
            username=stored.username,
            password=stored.password,
            timeout=settings.smtp_timeout,
            sender=from_,
        )
    if source == "catcher":
        return SmtpConfig(host="127.0.0.1", port=catcher_port, sender=from_)
    return None


# -- reading and saving -----------------------------------------------------------------------
async def load(settings: Settings) -> StoredMail | None:
    row = await MailSettings.objects().where(MailSettings.id == ROW_ID).first()
    if row is None:
        return None
    password = unseal_password(settings, row.password_sealed)
    return StoredMail(
        host=row.host,
        port=row.port,
        security=row.security,
        username=row.username,
        password=password or "",
        has_password=bool(row.password_sealed),
        password_unreadable=password is None,
        sender_name=row.sender_name,
        sender_address=row.sender_address,
        updated_at=row.updated_at,
    )


def _row_values(row: MailSettings | None) -> dict[str, Any]:
    if row is None:
        return {
            "host": "",
            "port": DEFAULT_PORT,
            "security": "starttls",
            "username": "",
            "sender_name": "",
            "sender_address": "",
        }
    return {name: getattr(row, name) for name in AUDITED}


async def save(settings: Settings, changes: Changes, actor: audit.Actor) -> list[str]:
    """Store ``changes``; return the names of the fields that changed (``password`` included),
    and record them in the activity log (the password as ``"changed"`` or ``"removed"`` only)."""
    async with db.write():
        # The one row exists from the first save on; concurrent saves queue on it.
        await MailSettings.insert(MailSettings(id=ROW_ID)).on_conflict(action="DO NOTHING")
        query = MailSettings.objects().where(MailSettings.id == ROW_ID)
        if db.is_postgres():
            query = query.lock_rows()
        row = await query.first()
        old = _row_values(row)
        new = dict(old)
        for name in AUDITED:
            value = getattr(changes, name)
            if value is not None:
                new[name] = value
        changed = [name for name in AUDITED if new[name] != old[name]]
        sealed = row.password_sealed if row is not None else None
        login_note = None
        if changes.new_password:
            sealed = seal_password(settings, changes.new_password)
            login_note = "changed"
        elif changes.remove_password and sealed:
            sealed = None
            login_note = "removed"
        if not changed and login_note is None:
            return []
        values = {
            **new,
            "password_sealed": sealed,
            "updated_at": clock.now(),
            "updated_by": actor.id,
        }
        await MailSettings.update(
            {getattr(MailSettings, name): value for name, value in values.items()}
        ).where(MailSettings.id == ROW_ID)
        before = {name: old[name] for name in changed}
        after: dict[str, Any] = {name: new[name] for name in changed}
        if login_note:
            after["password"] = login_note
            changed.append("password")
        await audit.record(
            actor,
            UPDATED,
            object_type="mail_settings",
            object_id=ROW_ID,
            before=before,
            after=after,
        )
    return changed


# -- the cache the worker reads ---------------------------------------------------------------
class StoredMailCache:
    """The stored settings as this process last read them (the worker cannot await a query)."""

    def __init__(self, settings: Settings, interval: float = REFRESH_SECONDS) -> None:
        self.settings = settings
        self.interval = interval
        self.current: StoredMail | None = None
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()

    async def refresh(self) -> StoredMail | None:
        self.current = await load(self.settings)
        return self.current

    async def start(self) -> None:
        try:
            await self.refresh()
        except Exception:  # e.g. not migrated yet: the environment and catcher still work
            log.exception("could not read the stored email settings")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="portico-mail-settings")

    async def stop(self) -> None:
        """Ends the refresher between two reads (a cancelled SQLite query would leave its
        connection open), cancelling only as a fallback."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        await asyncio.wait({task}, timeout=5.0)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
            if self._stop.is_set():
                return
            try:
                await self.refresh()
            except Exception as error:  # an outage is one line; anything else has its traceback
                log.warning(
                    "could not refresh the stored email settings (%s)",
                    type(error).__name__,
                    exc_info=not db.is_unavailable(error),
                )


# -- test email -------------------------------------------------------------------------------
class TooManyTestEmails(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many test emails")
        self.retry_after = retry_after


async def queue_test_email(
    settings: Settings, to_address: str, actor: audit.Actor, *, subject: str, sent_by: str
) -> int:
    """Queue a test message through the normal outbox: at most ``TEST_LIMIT`` per merchant in
    ``TEST_WINDOW`` (counted in the outbox, so every instance sees the same count)."""
    now = clock.now()
    async with db.write():
        if db.is_postgres():  # serialise one merchant's concurrent requests on its row
            await (
                MerchantAccount.select(MerchantAccount.id)
                .where(MerchantAccount.id == actor.id)
                .lock_rows()
            )
        recent = (
            await OutboxMessage.select(OutboxMessage.created_at)
            .where(
                (OutboxMessage.kind == TEST_KIND)
                & (OutboxMessage.reference == actor.id)
                & (OutboxMessage.created_at > now - TEST_WINDOW)
            )
            .order_by(OutboxMessage.created_at)
        )
        if len(recent) >= TEST_LIMIT:
            oldest = recent[-TEST_LIMIT]["created_at"]
            retry_after = int((oldest + TEST_WINDOW - now).total_seconds()) + 1
            raise TooManyTestEmails(max(1, retry_after))
        message_id = await mail.enqueue(
            settings,
            kind=TEST_KIND,
            to_address=to_address,
            subject=subject,
            template="test",
            context={
                "sent_by": sent_by,
                "base_url": settings.base_url,
                "requested_at": now.strftime("%Y-%m-%d %H:%M UTC"),
            },
            reference=actor.id,
        )
        await audit.record(
            actor,
            TEST_QUEUED,
            object_type="mail_outbox",
            object_id=str(message_id),
            after={"to": to_address},
        )
    mail.notify()
    return message_id
