"""Email passcodes: request, limits and verification (design.md §4).

Enumeration safety by construction: every request, for a known or an unknown email, creates the
same attempt row and queues the same outbox message in the same transaction, and every limit counts
attempts by email. Which customer (if any) the email belongs to is decided only where it cannot be
observed: by the delivery worker (which skips unknown addresses, so nothing is sent to them) and at
verification (where a correct code for an address with no customer cannot exist, since it was
never sent).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from app import clock, db
from app.billing.queries import choose_customer
from app.configuration.tables import PortalConfiguration
from app.login.tables import LoginAttempt
from app.mail import service as mail
from app.settings import Settings

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
WRONG_GUESSES_PER_CODE = 5
FAILED_VERIFICATIONS_PER_DAY = 20
RESEND_COOLDOWN = timedelta(seconds=60)
SENDS_PER_HOUR = 5
LIVE, USED, BURNED, SUPERSEDED = "live", "used", "burned", "superseded"

Notice = Literal["sent", "cooldown", "hourly_limit", "locked"]
Verdict = Literal["ok", "wrong", "burned", "expired", "used", "superseded", "locked", "unknown"]


class RequestOutcome(msgspec.Struct, frozen=True):
    # None when a limit refused the request and this portal has no attempt to show for the email.
    attempt_id: str | None
    notice: Notice
    retry_after: int = 0  # seconds until a new code may be requested


class VerifyOutcome(msgspec.Struct, frozen=True):
    verdict: Verdict
    customer_id: str | None = None
    tries_left: int = 0


def new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def new_attempt_id() -> str:
    return secrets.token_urlsafe(16)  # 128 bits


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"portico/login-code", hashlib.sha256).digest()


def code_hash(settings: Settings, attempt_id: str, code: str) -> str:
    return hmac.new(_key(settings), f"{attempt_id}:{code}".encode(), hashlib.sha256).hexdigest()


def clean_code(value: str) -> str:
    """What people paste: spaces and dashes are dropped."""
    return "".join(ch for ch in value if ch.isdigit())


async def _recent(email: str, since: datetime) -> list[dict]:
    return (
        await LoginAttempt.select(
            LoginAttempt.id,
            LoginAttempt.configuration,
            LoginAttempt.status,
            LoginAttempt.created_at,
            LoginAttempt.failed_attempts,
        )
        .where((LoginAttempt.email == email) & (LoginAttempt.created_at >= since))
        .order_by(LoginAttempt.created_at, ascending=False)
    )


async def _lock_email(email: str) -> None:
    """PostgreSQL: hold a transaction-scoped lock on ``email`` so that the limits' read-then-write
    is one step for every instance (two instances would otherwise both pass the cooldown, or both
    take a guess past the fifth). SQLite's ``BEGIN IMMEDIATE`` already serialises writers."""
    if db.is_postgres():
        await LoginAttempt.raw(
            "SELECT pg_advisory_xact_lock(hashtextextended({}, 0))", f"portico:login:{email}"
        )


def _failures(recent: list[dict]) -> int:
    return sum(row["failed_attempts"] for row in recent)


async def request_code(
    settings: Settings, configuration: PortalConfiguration, email: str, ip: str = ""
) -> RequestOutcome:
    """Queue a new passcode for ``email`` (already normalised), subject to the limits.

    The send and failure limits count the email across every portal (they protect the mailbox
    and the account); the resend cooldown is per portal, so each portal's page can show its own
    latest attempt."""
    now = clock.now()
    async with db.write():
        await _lock_email(email)
        recent = await _recent(email, now - timedelta(hours=24))
        mine = [row for row in recent if row["configuration"] == configuration.id]
        latest_id = mine[0]["id"] if mine else None
        if recent and _failures(recent) >= FAILED_VERIFICATIONS_PER_DAY:
            return RequestOutcome(latest_id, "locked", retry_after=24 * 3600)
        if mine and now - mine[0]["created_at"] < RESEND_COOLDOWN:
            wait = RESEND_COOLDOWN - (now - mine[0]["created_at"])
            return RequestOutcome(latest_id, "cooldown", retry_after=int(wait.total_seconds()) + 1)
        last_hour = [row for row in recent if row["created_at"] >= now - timedelta(hours=1)]
        if len(last_hour) >= SENDS_PER_HOUR:
            oldest = min(row["created_at"] for row in last_hour)
            wait = oldest + timedelta(hours=1) - now
            return RequestOutcome(latest_id, "hourly_limit", int(wait.total_seconds()) + 1)

        # One live code per (portal, email): a new request retires the old one.
        await LoginAttempt.update({LoginAttempt.status: SUPERSEDED}).where(
            (LoginAttempt.email == email)
            & (LoginAttempt.configuration == configuration.id)
            & (LoginAttempt.status == LIVE)
        )
        attempt_id, code = new_attempt_id(), new_code()
        expires_at = now + CODE_LIFETIME
        await LoginAttempt.insert(
            LoginAttempt(
                id=attempt_id,
                configuration=configuration.id,
                email=email,
                code_hash=code_hash(settings, attempt_id, code),
                status=LIVE,
                created_at=now,
                expires_at=expires_at,
                ip=ip[:64],
            )
        )
        await mail.enqueue(
            settings,
            kind="passcode",
            to_address=email,
            subject="",  # chosen at delivery, with the business name
            template="passcode",
            context={"attempt_id": attempt_id, "configuration": configuration.id},
            secrets={"code": code},
            expires_at=expires_at,
            configuration=configuration.id,
            reference=attempt_id,
        )
    mail.notify()
    return RequestOutcome(attempt_id, "sent")


async def get_attempt(configuration: PortalConfiguration, attempt_id: str) -> LoginAttempt | None:
    if not attempt_id or len(attempt_id) > 64:
        return None
    return (
        await LoginAttempt.objects()
        .where((LoginAttempt.id == attempt_id) & (LoginAttempt.configuration == configuration.id))
        .first()
    )


def state(attempt: LoginAttempt) -> Verdict | None:
    """Why a code can no longer be used, or None while it can."""
    if attempt.status == USED:
        return "used"
    if attempt.status == BURNED:
        return "burned"
    if attempt.status == SUPERSEDED:
        return "superseded"
    if clock.now() >= attempt.expires_at:
        return "expired"
    return None


async def verify(
    settings: Settings, configuration: PortalConfiguration, attempt_id: str, code: str
) -> VerifyOutcome:
    code = clean_code(code)
    now = clock.now()
    async with db.write():
        attempt = await get_attempt(configuration, attempt_id)
        if attempt is None:
            return VerifyOutcome("unknown")
        if db.is_postgres():  # serialise with the email's other requests, then look again
            await _lock_email(attempt.email)
            attempt = await get_attempt(configuration, attempt_id)
            assert attempt is not None  # attempts are never deleted
        if (reason := state(attempt)) is not None:
            return VerifyOutcome(reason)
        recent = await _recent(attempt.email, now - timedelta(hours=24))
        if _failures(recent) >= FAILED_VERIFICATIONS_PER_DAY:
            return VerifyOutcome("locked")

        expected = code_hash(settings, attempt.id, code)
        if len(code) == CODE_DIGITS and hmac.compare_digest(expected, attempt.code_hash):
            customer = await choose_customer(attempt.email)
            if customer is not None:
                # Conditional update: of many simultaneous correct submissions exactly one wins.
                won = (
                    await LoginAttempt.update(
                        {LoginAttempt.status: USED, LoginAttempt.used_at: now}
                    )
                    .where((LoginAttempt.id == attempt.id) & (LoginAttempt.status == LIVE))
                    .returning(LoginAttempt.id)
                )
                if not won:
                    return VerifyOutcome("used")
                return VerifyOutcome("ok", customer_id=customer.id)

        rows = (
            await LoginAttempt.update(
                {LoginAttempt.failed_attempts: LoginAttempt.failed_attempts + 1}
            )
            .where((LoginAttempt.id == attempt.id) & (LoginAttempt.status == LIVE))
            .returning(LoginAttempt.failed_attempts)
        )
        failed = rows[0]["failed_attempts"] if rows else WRONG_GUESSES_PER_CODE
        if failed >= WRONG_GUESSES_PER_CODE:
            await LoginAttempt.update({LoginAttempt.status: BURNED}).where(
                LoginAttempt.id == attempt.id
            )
            return VerifyOutcome("burned")
        return VerifyOutcome("wrong", tries_left=WRONG_GUESSES_PER_CODE - failed)


async def is_deliverable(attempt_id: str) -> LoginAttempt | None:
    """The attempt behind a queued passcode email, while its code can still be used."""
    attempt = await LoginAttempt.objects().where(LoginAttempt.id == attempt_id).first()
    if attempt is None or state(attempt) is not None:
        return None
    return attempt
