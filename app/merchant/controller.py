"""Merchant sign-in, sign-out, the ``/merchant`` entry point and the branding preview stylesheet.

Sign-in is a plain form (POST → 303 to ``next``) and, with htmx, a swap of ``#sign-in-panel``;
success is ``HX-Redirect`` for htmx, so the settings page arrives whole with the new cookie.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import TooManyRequestsException

from app.audit import service as audit
from app.configuration import service as configurations
from app.i18n import gettext as _
from app.i18n import ngettext
from app.login import sessions
from app.merchant import accounts
from app.merchant.access import (
    EXCEPTION_HANDLERS,
    SIGN_IN_PATH,
    MerchantAccess,
    actor,
    cookie,
    merchant_access,
    safe_next,
    sign_in_url,
)
from app.merchant.forms import SignInForm
from app.web.forms import parse, read_form
from app.web.htmx import page, see_other
from app.web.security import client_ip
from app.web.state import settings_of, throttle_of

# Per client address; the per-email lockout (accounts.MAX_FAILURES) is the real limit.
SIGN_INS_PER_MINUTE = 20
REASONS = ("expired", "signed_out")
PREVIEW_SELECTOR = ".m-preview"


def settings_path(configuration_id: str, page_name: str = "profile") -> str:
    return f"/merchant/configurations/{configuration_id}/{page_name}"


def _sign_in_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    next_url: str | None = None,
    reason: str | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "merchant/sign_in.html",
        fragment="sign_in_panel",
        status=status,
        context={
            "values": {"email": (values or {}).get("email", "")},
            "errors": errors or {},
            "next": next_url or "",
            "reason": reason if reason in REASONS else None,
            "sign_in_url": SIGN_IN_PATH,
        },
    )


def _locked_message(retry_after: int) -> str:
    minutes = max(1, (retry_after + 59) // 60)
    return ngettext(
        "Too many failed sign-in attempts for this email address. Try again in %(n)d minute.",
        "Too many failed sign-in attempts for this email address. Try again in %(n)d minutes.",
        minutes,
    ) % {"n": minutes}


class MerchantController(Controller):
    path = "/merchant"
    exception_handlers = EXCEPTION_HANDLERS

    @get("/sign-in", name="merchant:sign_in")
    async def sign_in_form(self, request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next"))
        found = await sessions.resume(accounts.MERCHANT, request.cookies.get(cookie(request)))
        if isinstance(found, sessions.Active):
            return see_other(request, next_url or "/merchant")
        return _sign_in_page(request, next_url=next_url, reason=request.query_params.get("reason"))

    @post("/sign-in", name="merchant:sign_in_submit")
    async def sign_in(self, request: Request) -> Response:
        ip = client_ip(request.scope)
        if not await throttle_of(request).hit(f"merchant:sign_in:{ip}", SIGN_INS_PER_MINUTE, 60.0):
            raise TooManyRequestsException(headers={"Retry-After": "60"})
        data = await read_form(request)
        next_url = safe_next(data.get("next"))
        form, errors = parse(SignInForm, data)
        if errors:
            return _sign_in_page(request, values=data, errors=errors, next_url=next_url, status=422)
        outcome = await accounts.authenticate(
            form.email,
            form.password,
            actor=audit.Actor(
                type="merchant", ip=ip, user_agent=request.headers.get("user-agent", "")
            ),
        )
        if outcome.verdict == "locked":
            return _sign_in_page(
                request,
                values=data,
                errors={"password": _locked_message(outcome.retry_after)},
                next_url=next_url,
                status=429,
            )
        if outcome.verdict != "ok" or outcome.account is None:
            return _sign_in_page(
                request,
                values=data,
                errors={"password": _("The email address or password is not right.")},
                next_url=next_url,
                status=422,
            )
        settings = settings_of(request)
        name = cookie(request)
        token = await sessions.start(
            accounts.MERCHANT,
            outcome.account.id,
            replacing=request.cookies.get(name),
            ip=ip,
            user_agent=request.headers.get("user-agent", ""),
        )
        response = see_other(request, next_url or "/merchant")
        response.set_cookie(
            key=name,
            value=token,
            path="/",
            httponly=True,
            secure=settings.is_https,
            samesite="lax",
        )
        return response

    @post("/sign-out", name="merchant:sign_out")
    async def sign_out(self, request: Request) -> Response:
        name = cookie(request)
        token = request.cookies.get(name)
        found = await sessions.resume(accounts.MERCHANT, token)
        await sessions.end(token)
        if isinstance(found, sessions.Active):
            account = await accounts.get(found.subject)
            await audit.record(
                audit.Actor(
                    type="merchant",
                    id=found.subject,
                    email=account.email if account else "",
                    ip=client_ip(request.scope),
                    user_agent=request.headers.get("user-agent", ""),
                ),
                "merchant.signed_out",
                object_type="merchant_account",
                object_id=found.subject,
            )
        response = see_other(request, sign_in_url(reason="signed_out"))
        response.delete_cookie(name, path="/")
        return response

    @get("/", name="merchant:home", dependencies={"access": Provide(merchant_access)})
    async def home(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        configuration = await configurations.ensure_default(actor(request, access))
        return see_other(request, settings_path(configuration.id))

    @get(
        "/branding-preview.css",
        name="merchant:preview_css",
        dependencies={"access": Provide(merchant_access)},
    )
    async def preview_css(
        self, request: Request, access: NamedDependency[MerchantAccess]
    ) -> Response[str]:
        """The preview's colours, font and corners as custom properties on ``.m-preview`` (the
        CSP allows no inline styles). Invalid values fall back to the defaults."""
        query: dict[str, Any] = request.query_params
        css = configurations.scoped_brand_css(
            PREVIEW_SELECTOR,
            str(query.get("brand_color", "")).lower(),
            str(query.get("accent_color", "")).lower(),
            str(query.get("font", "")),
            str(query.get("corner_style", "")),
        )
        return Response(
            css,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "private, max-age=3600"},
        )
