"""Server-side sessions for signed-in customers (and, later, merchants).

The browser holds a 256-bit random token in an HttpOnly cookie; the database holds only its
SHA-256, so a leaked table gives no usable session. A session is never adopted from the incoming
cookie at sign-in: ``start`` always issues a fresh token and deletes the one it replaces (session
fixation). Idle and absolute lifetimes are enforced on every use; sign-out deletes the row, so the
token is worthless everywhere at once (several instances share the table).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import msgspec

from app import clock, db
from app.login.tables import WebSession
from app.settings import Settings

# last_seen_at is refreshed at most this often, so reading a page is not a write every time.
TOUCH_EVERY = timedelta(seconds=30)


class Policy(msgspec.Struct, frozen=True):
    kind: str
    cookie: str
    idle: timedelta
    absolute: timedelta


CUSTOMER = Policy("customer", "portico_session", timedelta(minutes=30), timedelta(hours=12))


class Active(msgspec.Struct, frozen=True):
    id: str
    subject: str
    configuration: str | None
    data: dict[str, Any]


class Expired(msgspec.Struct, frozen=True):
    configuration: str | None


def cookie_name(policy: Policy, settings: Settings) -> str:
    # __Host- pins the cookie to this origin and path /, and requires Secure.
    return f"__Host-{policy.cookie}" if settings.is_https else policy.cookie


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start(
    policy: Policy,
    subject: str,
    *,
    configuration: str | None = None,
    replacing: str | None = None,
    ip: str = "",
    user_agent: str = "",
    flash: list[dict[str, str]] | None = None,
) -> str:
    """Create a session and return the cookie token. ``replacing`` (the incoming cookie, if any) is
    deleted: the session id always changes at sign-in."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    async with db.write():
        if replacing:
            await WebSession.delete().where(WebSession.id == _digest(replacing))
        await WebSession.insert(
            WebSession(
                id=_digest(token),
                kind=policy.kind,
                subject=subject,
                configuration=configuration,
                created_at=now,
                last_seen_at=now,
                absolute_expires_at=now + policy.absolute,
                data={"flash": flash} if flash else {},
                ip=ip[:64],
                user_agent=user_agent[:512],
            )
        )
    return token


async def resume(policy: Policy, token: str | None) -> Active | Expired | None:
    """The live session behind ``token``; ``Expired`` (and deleted) when it timed out; None when
    there is no such session."""
    if not token or len(token) > 128:
        return None
    rows = (
        await WebSession.select()
        .where((WebSession.id == _digest(token)) & (WebSession.kind == policy.kind))
        .output(load_json=True)
    )
    if not rows:
        return None
    row = rows[0]
    now = clock.now()
    if now >= row["absolute_expires_at"] or now - row["last_seen_at"] >= policy.idle:
        await WebSession.delete().where(WebSession.id == row["id"])
        return Expired(row["configuration"])
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        await WebSession.update({WebSession.last_seen_at: now}).where(WebSession.id == row["id"])
    return Active(row["id"], row["subject"], row["configuration"], row["data"] or {})


async def end(token: str | None) -> None:
    if token:
        await WebSession.delete().where(WebSession.id == _digest(token))


async def end_all(policy: Policy, subject: str) -> None:
    await WebSession.delete().where(
        (WebSession.kind == policy.kind) & (WebSession.subject == subject)
    )


async def push_flash(session: Active, message: str, level: str = "success") -> None:
    data = dict(session.data)
    data["flash"] = [*data.get("flash", []), {"message": message, "level": level}]
    await WebSession.update({WebSession.data: data}).where(WebSession.id == session.id)
    session.data.clear()
    session.data.update(data)


async def pop_flash(session: Active) -> list[dict[str, str]]:
    messages = list(session.data.get("flash", []))
    if messages:
        data = {k: v for k, v in session.data.items() if k != "flash"}
        await WebSession.update({WebSession.data: data}).where(WebSession.id == session.id)
        session.data.pop("flash", None)
    return messages
