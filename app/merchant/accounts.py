"""Merchant accounts: creation, argon2id passwords, and sign-in with per-email limits.

Sign-in is enumeration-safe: an unknown email costs the same work as a known one (the password is
verified against a dummy hash of the same parameters), gets the same answer, and is locked out by
the same failure count, so neither the page, the timing nor a lockout tells whether an account
exists. The per-email limits live in the database, where every instance sees them; the per-address
throttle is the controller's.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import Literal

import anyio.to_thread
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app import clock, db
from app.audit import service as audit
from app.i18n import gettext as _
from app.login import sessions
from app.login.tables import WebSession
from app.merchant.tables import MerchantAccount, MerchantSignInLimit
from app.web.forms import is_email, normalise_email

PASSWORD_MIN = 12
PASSWORD_MAX = 256  # hashing is deliberately slow: do not let a request hash megabytes
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)
LOCKED_FOR = timedelta(minutes=15)
# Merchant sessions: shorter idle time than customers' (settings change what customers see).
MERCHANT = sessions.Policy(
    "merchant", "portico_merchant", idle=timedelta(minutes=15), absolute=timedelta(hours=12)
)

# argon2id, argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4).
HASHER = PasswordHasher()
# A hash of a random password nobody knows, with the same parameters, so verifying an unknown
# email costs what verifying a real one does. Recomputed if the hasher's parameters change.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$YyXaJ73vQfB+h3H9i5Jvpw"
    "$1yXQlODWFbnsxsp9UyAfmlQir5JgYWNGXb/Bb5C7THg"
)


class AccountError(ValueError):
    """A refused account change; ``str(error)`` is the message to show."""


class SignInOutcome(msgspec.Struct, frozen=True):
    verdict: Literal["ok", "wrong", "locked"]
    account: MerchantAccount | None = None
    retry_after: int = 0  # seconds, when locked


@cache
def _dummy_hash() -> str:
    if HASHER.check_needs_rehash(_DUMMY_HASH):
        return HASHER.hash(secrets.token_urlsafe(32))
    return _DUMMY_HASH


def new_account_id() -> str:
    return f"macct_{secrets.token_hex(12)}"


def password_problem(password: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return _("The password must be at least %(n)d characters long.") % {"n": PASSWORD_MIN}
    if len(password) > PASSWORD_MAX:
        return _("The password must be at most %(n)d characters long.") % {"n": PASSWORD_MAX}
    return None


def email_problem(email: str) -> str | None:
    if not email.strip():
        return _("Enter an email address.")
    if not is_email(normalise_email(email)):
        return _("Enter an email address like name@example.com.")
    return None


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(HASHER.hash, password)


def _verify_sync(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    return await anyio.to_thread.run_sync(_verify_sync, password_hash, password)


async def get(account_id: str) -> MerchantAccount | None:
    if not account_id:
        return None
    return await MerchantAccount.objects().where(MerchantAccount.id == account_id).first()


async def by_email(email: str) -> MerchantAccount | None:
    return (
        await MerchantAccount.objects()
        .where(MerchantAccount.email == normalise_email(email))
        .first()
    )


async def create(email: str, password: str, *, actor: audit.Actor | None = None) -> MerchantAccount:
    """A new account; ``AccountError`` when the email or password is not acceptable or taken."""
    problem = email_problem(email) or password_problem(password)
    if problem:
        raise AccountError(problem)
    email = normalise_email(email)
    password_hash = await hash_password(password)
    account = MerchantAccount(
        id=new_account_id(),
        email=email,
        password_hash=password_hash,
        created_at=clock.now(),
        last_sign_in_at=None,
    )
    async with db.write():
        if await MerchantAccount.exists().where(MerchantAccount.email == email):
            raise AccountError(_("An account with this email address already exists."))
        await MerchantAccount.insert(account)
        await audit.record(
            actor or audit.Actor(type="system"),
            "merchant.account_created",
            object_type="merchant_account",
            object_id=account.id,
            after={"email": email},
        )
    return account


async def set_password(
    email: str, password: str, *, actor: audit.Actor | None = None
) -> MerchantAccount:
    """A new password for an existing account; every session of that account ends."""
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    account = await by_email(email)
    if account is None:
        raise AccountError(_("There is no account with this email address."))
    password_hash = await hash_password(password)
    async with db.write():
        await MerchantAccount.update({MerchantAccount.password_hash: password_hash}).where(
            MerchantAccount.id == account.id
        )
        await end_sessions(account.id)
        await MerchantSignInLimit.delete().where(MerchantSignInLimit.email == account.email)
        await audit.record(
            actor or audit.Actor(type="system"),
            "merchant.password_changed",
            object_type="merchant_account",
            object_id=account.id,
        )
    account.password_hash = password_hash
    return account


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds() + 0.999))


async def authenticate(email: str, password: str, *, actor: audit.Actor) -> SignInOutcome:
    """Check a password. Known and unknown emails do the same work and get the same verdicts.

    The attempt is counted as a failure before the password is checked (and forgiven, with the
    rest of the count, when it turns out right), so simultaneous requests, on one instance or
    several, cannot all pass the limit while their passwords are being hashed: of many at once,
    at most the ``MAX_FAILURES`` allowed are checked, and none once the lock has started."""
    email = normalise_email(email)
    now = clock.now()
    admitted = await _admit(email, now)
    if isinstance(admitted, datetime):  # locked before this attempt: nothing is checked
        return SignInOutcome("locked", retry_after=_seconds_until(admitted, now))
    account = await by_email(email)
    password = password[:PASSWORD_MAX]
    matches = await verify_password(account.password_hash if account else _dummy_hash(), password)
    logged = audit.Actor(
        type="merchant",
        id=account.id if account else "",
        email=email,
        ip=actor.ip,
        user_agent=actor.user_agent,
    )
    if account is not None and matches:
        changes: dict = {MerchantAccount.last_sign_in_at: now}
        if HASHER.check_needs_rehash(account.password_hash):
            changes[MerchantAccount.password_hash] = await hash_password(password)
        async with db.write():
            await MerchantAccount.update(changes).where(MerchantAccount.id == account.id)
            await MerchantSignInLimit.delete().where(MerchantSignInLimit.email == email)
            await audit.record(
                logged, "merchant.signed_in", object_type="merchant_account", object_id=account.id
            )
        return SignInOutcome("ok", account=account)
    async with db.write():
        await audit.record(
            logged,
            "merchant.sign_in_locked" if admitted.locked_until else "merchant.sign_in_failed",
            object_type="merchant_account",
            object_id=account.id if account else "",
        )
    if admitted.locked_until:
        return SignInOutcome("locked", retry_after=_seconds_until(admitted.locked_until, now))
    return SignInOutcome("wrong")


class _Admitted(msgspec.Struct, frozen=True):
    """An attempt let through and already counted; ``locked_until`` when it was the last one."""

    locked_until: datetime | None = None


async def _lock_email(email: str) -> None:
    """PostgreSQL: a transaction-scoped lock on ``email`` (as ``app.login.passcodes`` takes for
    passcodes), so that reading the limit and counting the attempt are one step for every
    instance. SQLite's ``BEGIN IMMEDIATE`` (``db.write()``) already serialises writers."""
    if db.is_postgres():
        await MerchantSignInLimit.raw(
            "SELECT pg_advisory_xact_lock(hashtextextended({}, 0))",
            f"portico:merchant-sign-in:{email}",
        )


async def _admit(email: str, now: datetime) -> _Admitted | datetime:
    """Let an attempt for ``email`` through and count it as a failure, or, while the email is
    locked, the lock's end. The attempt that reaches ``MAX_FAILURES`` starts the lock."""
    table = MerchantSignInLimit
    async with db.write():
        await _lock_email(email)
        # Rows that neither count nor lock any more are forgotten (keeps the table small).
        await table.delete().where(
            (table.window_started_at < now - timedelta(days=1))
            & (table.locked_until.is_null() | (table.locked_until < now))
        )
        row = (
            await table.select(table.failures, table.window_started_at, table.locked_until)
            .where(table.email == email)
            .first()
        )
        if row and row["locked_until"] and row["locked_until"] > now:
            return row["locked_until"]
        if row is None or row["window_started_at"] <= now - FAILURE_WINDOW:
            failures, started = 1, now
        else:
            failures, started = row["failures"] + 1, row["window_started_at"]
        locked_until = None
        if failures >= MAX_FAILURES:  # the last attempt allowed: the lock starts with it
            failures, started, locked_until = 0, now, now + LOCKED_FOR
        if row is None:
            await table.insert(
                table(
                    email=email,
                    failures=failures,
                    window_started_at=started,
                    locked_until=locked_until,
                )
            )
        else:
            await table.update(
                {
                    table.failures: failures,
                    table.window_started_at: started,
                    table.locked_until: locked_until,
                }
            ).where(table.email == email)
    return _Admitted(locked_until)


async def end_sessions(account_id: str) -> None:
    await WebSession.delete().where(
        (WebSession.kind == MERCHANT.kind) & (WebSession.subject == account_id)
    )


# -- the demo's merchant ------------------------------------------------------------------------
DEMO_EMAIL = "admin@acme.example"


async def ensure_demo_account(password: str) -> MerchantAccount:
    """The demo merchant with ``password``: created, or its password reset when it differs (the
    demo prints the password it keeps in its var directory)."""
    account = await by_email(DEMO_EMAIL)
    if account is None:
        return await create(DEMO_EMAIL, password)
    if not await verify_password(account.password_hash, password):
        return await set_password(DEMO_EMAIL, password)
    return account
