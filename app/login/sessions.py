"""Server-side sessions for signed-in customers (and merchants).

The browser holds a 256-bit random token in an HttpOnly cookie; the database holds only its
SHA-256, so a leaked table gives no usable session. A session is never adopted from the incoming
cookie at sign-in: ``start`` always issues a fresh token and deletes the one it replaces (session
fixation). Idle and absolute lifetimes are enforced on every use; sign-out deletes the row, so the
token is worthless everywhere at once (several instances share the table).

With ``PORTICO_REDIS_URL`` a ``SessionCache`` sits in front of the table (``use_cache``):
``resume`` reads Redis first and the database only on a miss, when the session is due for its
``last_seen_at`` refresh, or when the cached copy says it expired. The table stays the source of
truth: every change to a row (sign-out, expiry, flash messages, refresh) is written to the
database first and then invalidates the cached copy, so signing out on one instance ends the
session on every instance at once. See ``SessionCache`` for the races this closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import msgspec

from app import clock, db
from app.login.tables import WebSession
from app.settings import Settings
from app.web.redis_store import ERRORS, RedisStore

log = logging.getLogger("portico.sessions")

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


def digest(token: str) -> str:
    """The sessions table's id for a cookie token."""
    return hashlib.sha256(token.encode()).hexdigest()


# -- the Redis cache -------------------------------------------------------------------------------
class Cached(msgspec.Struct, frozen=True):
    """What Redis holds for a session: the row minus what only the database needs (ip, agent)."""

    kind: str
    subject: str
    configuration: str | None
    last_seen_at: datetime
    absolute_expires_at: datetime
    data: dict[str, Any]


ENDED = b"ended"

# KEYS: entry, generation. ARGV: the generation read before the database was, the entry, its TTL.
# Writes the entry only if nothing changed the session since that read (the generation is bumped
# by every change) and it did not end: a slow reader cannot put back what a writer invalidated.
FILL = """
local generation = redis.call('GET', KEYS[2]) or ''
if generation ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[1]) == 'ended' then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

# KEYS: entry, generation. ARGV: 'ended' or 'changed', the marker TTL.
# Bumps the generation; an ended session leaves an 'ended' marker (answered without the
# database), a changed one is dropped (and refilled from the database by the next reader).
INVALIDATE = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if ARGV[1] == 'ended' then
  redis.call('SET', KEYS[1], 'ended', 'EX', ARGV[2])
elseif redis.call('GET', KEYS[1]) ~= 'ended' then
  redis.call('DEL', KEYS[1])
end
return 1
"""


class SessionCache:
    """Sessions in Redis, in front of the sessions table (which stays the source of truth).

    Keys: ``<prefix>session:<sha256 of the token>`` holds a ``Cached`` copy (JSON) for at most
    ``TTL`` s and never past the session's own idle or absolute expiry, or the marker ``ended``
    for ``MARK_TTL`` s after sign-out or expiry; ``<prefix>session:<sha256>:gen`` counts the
    changes. Readers take the generation with the entry, read the database on a miss, and fill
    only if the generation has not moved (``FILL``); writers change the database first and then
    bump the generation (``INVALIDATE``). So no interleaving of a reader and a writer on different
    instances leaves a stale copy behind.

    Entries are signed (HMAC-SHA256 with a key derived from ``PORTICO_SECRET_KEY``, over the
    digest and the entry): whoever can write to Redis cannot make up a session for a token of
    their choosing; an entry that fails the check is a miss.

    When Redis is unavailable, reads go to the database and the invalidations Redis missed are
    kept here and sent when it answers again; those older than ``TTL`` are dropped, since any
    copy they were meant to remove has expired by then. (An instance that dies holding some is
    covered by the same bound.)
    """

    TTL = 60
    MARK_TTL = 3600
    MAX_PENDING = 10_000

    def __init__(self, store: RedisStore, secret_key: str) -> None:
        self.store = store
        self._mac_key = hmac.new(
            secret_key.encode(), b"portico/session-cache", hashlib.sha256
        ).digest()
        self._fill = store.client.register_script(FILL)
        self._invalidate = store.client.register_script(INVALIDATE)
        # digest -> (ended?, when it was missed)
        self._pending: dict[str, tuple[bool, float]] = {}

    def _keys(self, digest: str) -> list[str]:
        entry = self.store.key("session", digest)
        return [entry, entry + ":gen"]

    async def lookup(self, digest: str) -> tuple[Cached | bytes | None, bytes | None]:
        """``(entry, generation)``: the entry is a ``Cached``, ``ENDED`` or None (a miss); the
        generation is None when Redis did not answer (then nothing may be filled)."""
        if not await self._ready():
            return None, None
        try:
            entry, generation = await self.store.client.mget(self._keys(digest))
        except ERRORS as error:
            self.store.failed("sessions are read from the database", error)
            return None, None
        self.store.succeeded()
        if entry is None or entry == ENDED:
            return entry, generation or b""
        mac, _, payload = entry.partition(b".")
        if not hmac.compare_digest(mac, self._mac(digest, payload)):
            log.warning("a session cache entry failed its signature check; ignored")
            return None, generation or b""
        try:
            return msgspec.json.decode(payload, type=Cached), generation or b""
        except msgspec.DecodeError:  # written by another version: ignore it
            return None, generation or b""

    def _mac(self, digest: str, payload: bytes) -> bytes:
        signed = hmac.new(self._mac_key, digest.encode() + b"\n" + payload, hashlib.sha256)
        return signed.hexdigest().encode()

    async def fill(
        self, digest: str, generation: bytes, row: dict[str, Any], policy: Policy
    ) -> None:
        now = clock.now()
        ttl = min(
            self.TTL,
            int((row["absolute_expires_at"] - now).total_seconds()),
            int((row["last_seen_at"] + policy.idle - now).total_seconds()),
        )
        if ttl <= 0:
            return
        entry = Cached(
            kind=row["kind"],
            subject=row["subject"],
            configuration=row["configuration"],
            last_seen_at=row["last_seen_at"],
            absolute_expires_at=row["absolute_expires_at"],
            data=row["data"] or {},
        )
        payload = msgspec.json.encode(entry)
        value = self._mac(digest, payload) + b"." + payload
        try:
            await self._fill(keys=self._keys(digest), args=[generation, value, ttl])
        except ERRORS as error:
            self.store.failed("sessions are read from the database", error)

    async def invalidate(self, digests: list[str], *, ended: bool) -> None:
        """After the database changed (or deleted) these sessions."""
        missed = time.monotonic()
        for index, digest in enumerate(digests):
            if not await self._ready() or not await self._send(digest, ended):
                for rest in digests[index:]:
                    self._remember(rest, ended, missed)
                return

    async def _send(self, digest: str, ended: bool) -> bool:
        try:
            await self._invalidate(
                keys=self._keys(digest), args=["ended" if ended else "changed", self.MARK_TTL]
            )
        except ERRORS as error:
            self.store.failed("sessions are read from the database", error)
            return False
        self.store.succeeded()
        return True

    def _remember(self, digest: str, ended: bool, missed: float) -> None:
        was_ended = self._pending.get(digest, (False, missed))[0]
        self._pending[digest] = (ended or was_ended, missed)
        while len(self._pending) > self.MAX_PENDING:
            del self._pending[next(iter(self._pending))]

    async def _ready(self) -> bool:
        """Redis may be used: the breaker is closed and every missed invalidation is sent."""
        if not self.store.available:
            return False
        if self._pending:
            cutoff = time.monotonic() - self.TTL
            for digest, (ended, missed) in list(self._pending.items()):
                # Too old to matter (any copy it was for has expired), or sent now.
                if missed < cutoff or await self._send(digest, ended):
                    del self._pending[digest]
                else:
                    return False
        return True


_cache: SessionCache | None = None


def use_cache(cache: SessionCache | None) -> SessionCache | None:
    """Put ``cache`` in front of the sessions table (None: the table alone); returns the one it
    replaces. Set by the app at startup, like the database engine."""
    global _cache
    previous, _cache = _cache, cache
    return previous


def current_cache() -> SessionCache | None:
    return _cache


async def _changed(digest: str) -> None:
    if _cache is not None:
        await _cache.invalidate([digest], ended=False)


async def _ended(digests: list[str]) -> None:
    if _cache is not None and digests:
        await _cache.invalidate(digests, ended=True)


# -- sessions --------------------------------------------------------------------------------------
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
            await WebSession.delete().where(WebSession.id == digest(replacing))
        await WebSession.insert(
            WebSession(
                id=digest(token),
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
    if replacing:
        await _ended([digest(replacing)])
    return token


def is_over(policy: Policy, last_seen_at: datetime, absolute_expires_at: datetime) -> bool:
    """Past the absolute lifetime, or idle for too long."""
    now = clock.now()
    return now >= absolute_expires_at or now - last_seen_at >= policy.idle


def due_for_touch(last_seen_at: datetime) -> bool:
    """Time to record the session's use again (``TOUCH_EVERY``)."""
    return clock.now() - last_seen_at >= TOUCH_EVERY


# Sessions whose use is still to be recorded, and the request (task) writing some now.
_due: set[str] = set()
_writer: asyncio.Task | None = None
TOUCH_BATCH = 500


async def touch(session_id: str) -> None:
    """Record that the session was just used (the idle timeout counts from here).

    One request writes at a time, and it also writes every session that fell due meanwhile, in
    the same statement: when many sessions fall due at once (they were all signed in together,
    say), that is a few statements instead of one write per page view queued on the database's
    connections (or, on SQLite, its single write lock). A touch that comes while another request
    is writing is written by that request, before it finishes; a write that fails leaves its
    sessions due, so their next view records them."""
    global _writer
    _due.add(session_id)
    me = asyncio.current_task()
    writer = _writer
    if (
        writer is not None
        and me is not None
        and not writer.done()
        and writer.get_loop() is me.get_loop()  # not one left behind by a closed loop
    ):
        return
    _writer = me
    try:
        while _due:
            batch = list(_due)[:TOUCH_BATCH]
            _due.difference_update(batch)
            await WebSession.update({WebSession.last_seen_at: clock.now()}).where(
                WebSession.id.is_in(batch)
            )
            for changed in batch:
                await _changed(changed)  # the next read fills the cache with the new last_seen_at
    finally:
        if _writer is me:
            _writer = None


async def resume(policy: Policy, token: str | None) -> Active | Expired | None:
    """The live session behind ``token``; ``Expired`` (and deleted) when it timed out; None when
    there is no such session."""
    if not token or len(token) > 128:
        return None
    session_id = digest(token)
    generation: bytes | None = None
    if _cache is not None:
        cached, generation = await _cache.lookup(session_id)
        if cached == ENDED:
            return None
        if isinstance(cached, Cached):
            if cached.kind != policy.kind:
                return None
            fresh = not due_for_touch(cached.last_seen_at)
            if fresh and not is_over(policy, cached.last_seen_at, cached.absolute_expires_at):
                return Active(session_id, cached.subject, cached.configuration, dict(cached.data))
            # Due for a refresh, or over by the cached copy: the database decides.
    rows = (
        await WebSession.select()
        .where((WebSession.id == session_id) & (WebSession.kind == policy.kind))
        .output(load_json=True)
    )
    if not rows:
        return None
    row = rows[0]
    if is_over(policy, row["last_seen_at"], row["absolute_expires_at"]):
        await WebSession.delete().where(WebSession.id == row["id"])
        await _ended([session_id])
        return Expired(row["configuration"])
    if due_for_touch(row["last_seen_at"]):
        await touch(row["id"])
    elif _cache is not None and generation is not None:
        await _cache.fill(session_id, generation, row, policy)
    return Active(row["id"], row["subject"], row["configuration"], row["data"] or {})


async def end(token: str | None) -> None:
    if token:
        session_id = digest(token)
        await WebSession.delete().where(WebSession.id == session_id)
        await _ended([session_id])


async def end_all(policy: Policy, subject: str) -> None:
    ended = (
        await WebSession.delete()
        .where((WebSession.kind == policy.kind) & (WebSession.subject == subject))
        .returning(WebSession.id)
    )
    await _ended([row["id"] for row in ended])


async def push_flash(session: Active, message: str, level: str = "success") -> None:
    data = dict(session.data)
    data["flash"] = [*data.get("flash", []), {"message": message, "level": level}]
    await WebSession.update({WebSession.data: data}).where(WebSession.id == session.id)
    await _changed(session.id)
    session.data.clear()
    session.data.update(data)


async def pop_flash(session: Active) -> list[dict[str, str]]:
    messages = list(session.data.get("flash", []))
    if messages:
        data = {k: v for k, v in session.data.items() if k != "flash"}
        await WebSession.update({WebSession.data: data}).where(WebSession.id == session.id)
        await _changed(session.id)
        session.data.pop("flash", None)
    return messages
