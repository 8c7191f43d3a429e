"""Who is signed in on the merchant side, and how merchant pages answer.

Every settings handler takes ``access: MerchantAccess`` (a dependency). Only the merchant cookie
is read, and only sessions of kind ``merchant`` are accepted, so a customer session (another
cookie, another kind) never grants anything here. Without a session: 303 to the sign-in page
with ``?next=`` (local ``/merchant`` paths only).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from app.audit import service as audit
from app.login import sessions
from app.merchant import accounts
from app.merchant.accounts import MERCHANT
from app.merchant.tables import MerchantAccount
from app.web.htmx import VARY, see_other, wants_fragment
from app.web.security import client_ip
from app.web.state import settings_of

SIGN_IN_PATH = "/merchant/sign-in"
HOME_PATH = "/merchant"
_NEXT_PATH = re.compile(r"^/merchant(/[A-Za-z0-9_\-/]*)?$")
_NEXT_QUERY = re.compile(r"^[A-Za-z0-9_\-.~%+=&@]*$")


class MerchantAccess(msgspec.Struct):
    account: MerchantAccount
    session: sessions.Active


class MerchantSignInRequired(HTTPException):
    status_code = 401

    def __init__(self, reason: str | None) -> None:
        super().__init__(detail="merchant sign-in required")
        self.reason = reason


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a local ``/merchant…`` path (with an optional plain query), else None:
    no scheme, host, ``//``, backslash, dot segment or fragment can get through."""
    if not value or len(value) > 512:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment or "#" in value:
        return None
    if not _NEXT_PATH.match(parts.path) or "//" in parts.path:
        return None
    if parts.path.rstrip("/") == SIGN_IN_PATH:
        return None
    if parts.query and not _NEXT_QUERY.match(parts.query):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sign_in_url(next_url: str | None = None, reason: str | None = None) -> str:
    query = []
    if next_url:
        query.append(f"next={quote(next_url, safe='/')}")
    if reason:
        query.append(f"reason={reason}")
    return SIGN_IN_PATH + (f"?{'&'.join(query)}" if query else "")


def cookie(request: Request) -> str:
    return sessions.cookie_name(MERCHANT, settings_of(request))


async def merchant_access(request: Request) -> MerchantAccess:
    token = request.cookies.get(cookie(request))
    found = await sessions.resume(MERCHANT, token)
    if isinstance(found, sessions.Expired):
        raise MerchantSignInRequired("expired")
    if found is None:
        raise MerchantSignInRequired(None)
    account = await accounts.get(found.subject)
    if account is None:
        await sessions.end(token)
        raise MerchantSignInRequired(None)
    return MerchantAccess(account=account, session=found)


def _return_to(request: Request) -> str | None:
    """Where to go after signing in: this page for a GET; for a POST, the page the form was on."""
    if request.method == "GET":
        query = request.url.query
        return safe_next(request.url.path + (f"?{query}" if query else ""))
    referer = request.headers.get("referer", "")
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    return safe_next(parts.path)


def sign_in_required_handler(request: Request, exc: MerchantSignInRequired) -> Response:
    response = see_other(request, sign_in_url(_return_to(request), exc.reason))
    response.delete_cookie(cookie(request), path="/")
    return response


EXCEPTION_HANDLERS: dict[Any, Any] = {MerchantSignInRequired: sign_in_required_handler}


def actor(request: Request, access: MerchantAccess) -> audit.Actor:
    return audit.Actor(
        type="merchant",
        id=access.account.id,
        email=access.account.email,
        ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent", ""),
    )


async def done(
    request: Request, access: MerchantAccess, url: str, message: str, level: str = "success"
) -> Response:
    """After a successful change: the flash goes into the session; no-JS gets 303 to ``url``,
    htmx gets ``HX-Location`` (an ajax GET of ``url`` swapped into ``#main-content``, URL pushed),
    so both end on the same page showing the same message."""
    await sessions.push_flash(access.session, message, level)
    if wants_fragment(request):
        location = json.dumps({"path": url, "target": "#main-content"})
        return Response(content=b"", status_code=200, headers={**VARY, "HX-Location": location})
    return see_other(request, url)
