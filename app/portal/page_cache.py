"""Portal pages kept rendered while nothing they show has changed.

A customer reading their overview or invoice history again gets the page rendered last time,
after one small query, instead of the session check, the billing queries and the template. The
page is the real one, rendered by its handler; it is only kept, never made up:

- **Which pages.** Handlers marked ``opt=CACHED`` (the overview, the invoice history and its
  pages). On a miss, their ``before_request`` (``serve``) leaves a ``Ticket`` and
  ``responses.render`` hands the rendered page to ``keep``.
- **When a kept page is sent.** One query reads the session behind the cookie and the two change
  counters of ``PortalStamp``: the customer's own and the shared one. Database triggers bump them
  on every write to anything a portal page shows, whoever writes it (see the migration that
  creates them), so a counter that has not moved means nothing the page shows has changed, on
  any instance. A page is stored under the counters read *before* its data was, so a change
  committed in between can only make the stored copy look older than it is, never newer.
- **Where it is sent from.** ``FastPath`` (ASGI, before Litestar's router) sends it to a browser
  that already holds its CSRF cookie; otherwise ``serve`` does, after Litestar's CSRF middleware
  has made the browser a token.
- **What makes a page personal** is in its key or keeps it out: the key holds the customer, the
  portal configuration, the path (as the router normalises it) and query, and page-or-fragment;
  the CSRF token is swapped out for a placeholder when stored and swapped back in when served
  (128 hex digits, checked, so nothing needs escaping); a page with a flash message, a billing
  notice, a form error or a form intent (a one-time key) is never stored, and a session holding a
  flash message is never served from the cache.
- **The session rules are the same**: an expired, ended or unknown session, or one whose flash
  message is waiting, goes to the handler, which answers as before; a session due for its
  ``last_seen_at`` refresh is refreshed here (``sessions.touch``).
- **Time**: an entry is served for at most ``MAX_AGE`` (what moves with the clock rather than
  with a write, such as which subscriptions "ended in the last 90 days", is at most that late),
  each for a random part of it from ``MIN_AGE`` up, so pages kept together (after a restart,
  say) are not all rendered again in the same second.
- **Memory**: pages are kept compressed (zlib, fast level: a 5 KB page takes about 1.3 KB), at
  most ``max_bytes`` of them per process (``PORTICO_PAGE_CACHE_MB``, 0 turns the cache off),
  least recently used first out. The cache lives in the process: restart after restoring the
  database from a backup (its counters go back with it).
"""

from __future__ import annotations

import logging
import re
import secrets
import zlib
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec
from litestar import Litestar, Request, Response
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils import normalize_path
from litestar.utils.scope.state import ScopeState

from app import clock, db
from app.billing import health
from app.login import sessions
from app.portal.intents import FIELD as INTENT_FIELD
from app.portal.tables import EVERYONE
from app.settings import Settings
from app.web.errors import unavailable_or_internal_handler
from app.web.htmx import wants_fragment
from app.web.state import settings_of

log = logging.getLogger("portico.page_cache")

MAX_AGE = timedelta(minutes=5)
MIN_AGE = MAX_AGE * 0.75
# What an entry costs besides its page: key, stamp, headers, the dict slot (measured, rounded up).
ENTRY_OVERHEAD = 1024
# On a route handler: ``@get(..., opt=CACHED)``.
CACHED = {"page_cache": True}

# Litestar's CSRF token: 64 hex digits and their 64-hex-digit HMAC.
_TOKEN = re.compile(r"[0-9a-f]{128}")
_INTENT = f'name="{INTENT_FIELD}"'.encode()

# The session behind the cookie and the counters the customer's pages depend on, in one query.
_PROBE = db.Sql(
    "SELECT s.subject, s.configuration, s.last_seen_at, s.absolute_expires_at, s.data, "
    "(SELECT version FROM portal_stamp WHERE scope = s.subject) AS own, "
    "(SELECT version FROM portal_stamp WHERE scope = {}) AS shared "
    "FROM web_session s WHERE s.id = {} AND s.kind = {}"
)


class Stamp(NamedTuple):
    own: int
    shared: int


class Key(NamedTuple):
    customer: str
    configuration: str
    path: str
    query: bytes
    fragment: bool


@dataclass(frozen=True, slots=True)
class Entry:
    stamp: Stamp
    expires_at: datetime  # kept at, plus between MIN_AGE and MAX_AGE
    body: bytes  # compressed, with ``PageCache.placeholder`` where the CSRF token was
    headers: tuple[tuple[str, str], ...]  # the page's own (Vary…), without type and length
    raw_headers: tuple[tuple[bytes, bytes], ...]  # the same and the type, as ASGI sends them

    def page(self, cache: PageCache, csrf: str) -> bytes:
        """The page as sent to the browser whose CSRF token is ``csrf``."""
        return zlib.decompress(self.body).replace(cache.placeholder, csrf.encode())


@dataclass(frozen=True, slots=True)
class Ticket:
    """A miss, to be kept by ``keep`` once the handler has rendered it."""

    cache: PageCache
    key: Key
    stamp: Stamp
    token: str


class PageCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        # How many entries each path has: the fast path probes only paths with some.
        self.paths: Counter[str] = Counter()
        # Never a real token: those are random hex, and this is not hex.
        self.placeholder = b"portico-csrf-" + b"x" * 115

    def get(self, key: Key, stamp: Stamp) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None or entry.stamp != stamp or clock.now() >= entry.expires_at:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: Key, entry: Entry) -> None:
        cost = len(entry.body) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._forget(key, old)
        self._entries[key] = entry
        self.size += cost
        self.paths[key.path] += 1
        while self.size > self.max_bytes:
            self._forget(*self._entries.popitem(last=False))

    def _forget(self, key: Key, entry: Entry) -> None:
        self.size -= len(entry.body) + ENTRY_OVERHEAD
        self.paths[key.path] -= 1
        if not self.paths[key.path]:
            del self.paths[key.path]

    def __len__(self) -> int:
        return len(self._entries)


def from_settings(settings: Settings) -> PageCache | None:
    """A process's cache, ``PORTICO_PAGE_CACHE_MB`` big (None when 0)."""
    return PageCache(settings.page_cache_mb * 1024 * 1024) if settings.page_cache_mb else None


def cache_of(app: Litestar) -> PageCache | None:
    return app.state.get("page_cache")


def _csrf_token(request: Request) -> str | None:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None


def _no_flash(data: Any) -> bool:
    if isinstance(data, str | bytes):
        try:
            data = msgspec.json.decode(data) if data else {}
        except msgspec.DecodeError:
            return False
    return not (data or {}).get("flash") if isinstance(data, dict) else data is None


class Probe(NamedTuple):
    """What the one query found for a request whose page may be kept."""

    key: Key
    stamp: Stamp
    session_id: str
    last_seen: datetime


_PROBED = "portico_page_cache_probe"  # in the scope's state: one query per request


async def _probe(request: Request) -> Probe | None:
    """The session and counters behind the request, when its page may come from the cache (a
    live session without a waiting flash message, billing reachable); None otherwise."""
    state = request.scope["state"]
    if _PROBED in state:
        return state[_PROBED]
    state[_PROBED] = found = await _read(request)
    return found


async def _read(request: Request) -> Probe | None:
    if health.billing_notice(request):
        return None
    token = request.cookies.get(sessions.cookie_name(sessions.CUSTOMER, settings_of(request)))
    if not token or len(token) > 128:
        return None
    session_id = sessions.digest(token)
    rows = await db.fetch(_PROBE, EVERYONE, session_id, sessions.CUSTOMER.kind)
    if not rows:
        return None
    row = rows[0]
    last_seen = row["last_seen_at"]
    if (
        row["configuration"] is None
        or sessions.is_over(sessions.CUSTOMER, last_seen, row["absolute_expires_at"])
        or not _no_flash(row["data"])
    ):
        return None  # the handler signs them out, or shows the message
    key = Key(
        customer=row["subject"],
        configuration=row["configuration"],
        path=normalize_path(request.scope["path"]),  # as the router has it
        query=request.scope.get("query_string", b""),
        fragment=wants_fragment(request),
    )
    return Probe(key, Stamp(row["own"] or 0, row["shared"] or 0), session_id, last_seen)


async def _touch(found: Probe) -> None:
    if sessions.due_for_touch(found.last_seen):
        await sessions.touch(found.session_id)


async def serve(request: Request) -> Response | None:
    """For the handlers that allow it (``before_request``): the kept page, or None to let the
    handler answer, with a ``Ticket`` in ``request.state`` when its page may be kept."""
    cache = cache_of(request.app)
    csrf = _csrf_token(request)
    found = await _probe(request) if cache is not None and csrf is not None else None
    if cache is None or csrf is None or found is None:
        return None
    entry = cache.get(found.key, found.stamp)
    if entry is None:
        request.state.page_cache_ticket = Ticket(cache, found.key, found.stamp, csrf)
        return None
    await _touch(found)
    return Response(
        content=entry.page(cache, csrf), headers=dict(entry.headers), media_type="text/html"
    )


class FastPath:
    """ASGI, in front of Litestar's router (inside the app, so the security headers of its
    ``before_send`` hook and the access log still apply): a kept page for a browser that already
    has its CSRF cookie is sent from here, without routing, middleware or a handler. Only for
    GETs of a path some page was kept under; anything else, or no kept page, goes on as usual
    (and the probe's answer with it, so a miss costs no second query)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = None
        if scope["type"] == "http" and scope["method"] == "GET":
            cache = cache_of(scope["litestar_app"])
        if cache is None or normalize_path(scope["path"]) not in cache.paths or _has_body(scope):
            await self.app(scope, receive, send)
            return
        request: Request = scope["litestar_app"].request_class(scope, receive)
        csrf = request.cookies.get(request.app.csrf_config.cookie_name, "")
        if not _TOKEN.fullmatch(csrf):
            await self.app(scope, receive, send)
            return
        try:
            found = await _probe(request)
            entry = cache.get(found.key, found.stamp) if found is not None else None
        except Exception as error:  # as the app's own handler answers it (503 for an outage)
            response = unavailable_or_internal_handler(request, error)
            await response.to_asgi_response(None, request)(scope, receive, send)
            return
        if entry is None:
            await self.app(scope, receive, send)
            return
        body = entry.page(cache, csrf)
        headers = [*entry.raw_headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        # After the page is on its way: recording the session's use does not delay it (and if
        # the database fails now, the next view records it).
        try:
            await _touch(found)  # type: ignore[arg-type]  (an entry means a probe)
        except Exception as error:
            log.warning("could not record a session's use: %s", type(error).__name__)


def _has_body(scope: Scope) -> bool:
    """A GET declaring a body: left to the app (which refuses one over the size limit)."""
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


def ticket(request: Request) -> Ticket | None:
    return request.state.get("page_cache_ticket")


def keep(request: Request, ticket: Ticket, page: Response) -> Response:
    """Render ``page`` (a template response) now, keep it under the ticket, and send the same
    bytes. A page holding a form intent is sent but not kept (each view needs its own)."""
    rendered = page.to_asgi_response(None, request)
    headers = tuple(
        (name, value)
        for name, value in rendered.headers.items()
        if name.lower() not in ("content-length", "content-type")
    )
    if _INTENT not in rendered.body:
        stored = rendered.body.replace(ticket.token.encode(), ticket.cache.placeholder)
        raw = (
            (b"content-type", b"text/html; charset=utf-8"),
            *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers),
        )
        spread = (MAX_AGE - MIN_AGE) * (secrets.randbelow(1001) / 1000)
        expires_at = clock.now() + MIN_AGE + spread
        entry = Entry(ticket.stamp, expires_at, zlib.compress(stored, 1), headers, raw)
        ticket.cache.put(ticket.key, entry)
    return Response(
        content=rendered.body,
        status_code=rendered.status_code,
        headers=dict(headers),
        media_type="text/html",
    )
