"""The login link: email → passcode → signed-in portal.

Every step is a plain form (POST → 303 → GET) and, with htmx, a fragment swap of ``#login-panel``
whose URL is pushed so a reload shows the same step.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, TooManyRequestsException
from litestar.params import FromPath

from app.audit import service as audit
from app.billing.gateway import GatewayError
from app.configuration import service as configurations
from app.configuration.tables import PortalConfiguration
from app.i18n import gettext as _
from app.i18n import ngettext
from app.login import passcodes, sessions
from app.login.forms import CodeForm, EmailForm
from app.login.tables import LoginAttempt
from app.web.forms import is_email, normalise_email, parse, read_form
from app.web.htmx import page, see_other, wants_fragment
from app.web.security import client_ip
from app.web.state import gateway_of, settings_of, throttle_of

log = logging.getLogger("portico.login")

# Per client address (generous, so an office behind one address is not locked out).
REQUESTS_PER_MINUTE = 30
VERIFICATIONS_PER_MINUTE = 60
NOTICES = ("sent", "cooldown", "hourly_limit", "locked")
REASONS = ("expired", "signed_out")


def prefilled_email(request: Request) -> str:
    """``?prefilled_email=`` as typed: percent-decoded, with a literal ``+`` kept as ``+`` (emails
    have no spaces, and people paste ``jenny+billing@…`` unencoded). Invalid values are ignored."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    for pair in raw.split("&"):
        name, _sep, value = pair.partition("=")
        if name == "prefilled_email":
            email = unquote(value).strip()
            return email if is_email(email) else ""
    return ""


def _actor(request: Request, customer_id: str = "", email: str = "") -> audit.Actor:
    return audit.Actor(
        type="customer",
        id=customer_id,
        email=email,
        ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent", ""),
    )


async def _configuration(token: str) -> PortalConfiguration:
    configuration = await configurations.by_login_token(token)
    if configuration is None:
        raise NotFoundException()
    return configuration


def _urls(configuration: PortalConfiguration, attempt_id: str | None = None) -> dict[str, str]:
    start = configurations.login_path(configuration)
    urls = {"start_url": start}
    if attempt_id:
        urls["code_url"] = f"{start}/code/{attempt_id}"
        urls["resend_url"] = f"{start}/code/{attempt_id}/resend"
    return urls


def _base(configuration: PortalConfiguration) -> dict[str, Any]:
    return {
        "configuration": configuration,
        "brand": configurations.branding(configuration),
    }


def _notice_text(notice: str, retry_after: int) -> str:
    if notice == "cooldown":
        return ngettext(
            "We sent a code less than a minute ago. Use that code, or ask for a new one in "
            "%(n)d second.",
            "We sent a code less than a minute ago. Use that code, or ask for a new one in "
            "%(n)d seconds.",
            retry_after,
        ) % {"n": retry_after}
    if notice == "hourly_limit":
        minutes = max(1, round(retry_after / 60))
        return ngettext(
            "You have asked for several codes in the last hour. Use the latest code, or ask for "
            "a new one in %(n)d minute.",
            "You have asked for several codes in the last hour. Use the latest code, or ask for "
            "a new one in %(n)d minutes.",
            minutes,
        ) % {"n": minutes}
    if notice == "locked":
        return _(
            "Too many wrong codes were entered for this email address. Signing in with a code is "
            "paused for 24 hours."
        )
    return ""


def _verdict_text(outcome: passcodes.VerifyOutcome) -> str:
    return {
        "wrong": ngettext(
            "That code is not right. You have %(n)d try left.",
            "That code is not right. You have %(n)d tries left.",
            outcome.tries_left,
        )
        % {"n": outcome.tries_left},
        "burned": _("Too many wrong tries: this code no longer works. Ask for a new code."),
        "expired": _("This code has expired. Codes work for 10 minutes. Ask for a new code."),
        "used": _("This code has already been used. Ask for a new code."),
        "superseded": _("A newer code was sent. Use the code from the latest email."),
        "locked": _notice_text("locked", 0),
    }.get(outcome.verdict, "")


async def _refresh_billing(request: Request, customer_id: str) -> str | None:
    """Bring the customer's billing objects up to date before the first page (Stripe mode). If the
    provider cannot be reached, sign-in still succeeds and pages show the local copy."""
    try:
        await gateway_of(request).refresh_customer(customer_id)
    except GatewayError:
        log.warning("could not refresh billing data at sign-in")
        return _(
            "We could not reach our billing system just now, so some details may be a few "
            "minutes old."
        )
    return None


class LoginController(Controller):
    path = "/p/login/{token:str}"

    @get("/", name="login:start")
    async def start(self, request: Request, token: FromPath[str]) -> Response:
        configuration = await _configuration(token)
        reason = request.query_params.get("reason")
        return page(
            request,
            "login/email.html",
            fragment="login_panel",
            context={
                **_base(configuration),
                **_urls(configuration),
                "values": {"email": prefilled_email(request)},
                "errors": {},
                "reason": reason if reason in REASONS else None,
            },
        )

    @post("/", name="login:request")
    async def request_code(self, request: Request, token: FromPath[str]) -> Response:
        configuration = await _configuration(token)
        await self._throttle(request, "request", REQUESTS_PER_MINUTE)
        data = await read_form(request)
        form, errors = parse(EmailForm, data)
        if errors:
            return page(
                request,
                "login/email.html",
                fragment="login_panel",
                status=422,
                context={
                    **_base(configuration),
                    **_urls(configuration),
                    "values": data,
                    "errors": errors,
                    "reason": None,
                },
            )
        email = normalise_email(form.email)
        outcome = await passcodes.request_code(
            settings_of(request), configuration, email, client_ip(request.scope)
        )
        return await self._after_request(request, configuration, outcome, email)

    @get("/code/{attempt_id:str}", name="login:code")
    async def code(
        self, request: Request, token: FromPath[str], attempt_id: FromPath[str]
    ) -> Response:
        configuration = await _configuration(token)
        attempt = await self._attempt(configuration, attempt_id)
        notice = request.query_params.get("notice", "")
        retry_after = request.query_params.get("wait", "0")
        return self._code_page(
            request,
            configuration,
            attempt,
            notice=notice if notice in NOTICES else "",
            retry_after=int(retry_after) if retry_after.isdigit() else 0,
        )

    @post("/code/{attempt_id:str}", name="login:verify")
    async def verify(
        self, request: Request, token: FromPath[str], attempt_id: FromPath[str]
    ) -> Response:
        configuration = await _configuration(token)
        await self._throttle(request, "verify", VERIFICATIONS_PER_MINUTE)
        attempt = await self._attempt(configuration, attempt_id)
        data = await read_form(request)
        form, errors = parse(CodeForm, data)
        if errors:
            return self._code_page(request, configuration, attempt, errors=errors, status=422)
        settings = settings_of(request)
        outcome = await passcodes.verify(settings, configuration, attempt.id, form.code)
        if outcome.verdict != "ok" or outcome.customer_id is None:
            refreshed = await self._attempt(configuration, attempt.id)
            return self._code_page(
                request,
                configuration,
                refreshed,
                errors={"code": _verdict_text(outcome)},
                status=429 if outcome.verdict == "locked" else 422,
            )
        notice = await _refresh_billing(request, outcome.customer_id)
        cookie = sessions.cookie_name(sessions.CUSTOMER, settings)
        session_token = await sessions.start(
            sessions.CUSTOMER,
            outcome.customer_id,
            configuration=configuration.id,
            replacing=request.cookies.get(cookie),
            ip=client_ip(request.scope),
            user_agent=request.headers.get("user-agent", ""),
            flash=[{"message": notice, "level": "warning"}] if notice else None,
        )
        await audit.record(
            _actor(request, outcome.customer_id, attempt.email),
            "customer.signed_in",
            configuration=configuration.id,
            object_type="customer",
            object_id=outcome.customer_id,
        )
        response = see_other(request, "/portal")
        response.set_cookie(
            key=cookie,
            value=session_token,
            path="/",
            httponly=True,
            secure=settings.is_https,
            samesite="lax",
        )
        return response

    @post("/code/{attempt_id:str}/resend", name="login:resend")
    async def resend(
        self, request: Request, token: FromPath[str], attempt_id: FromPath[str]
    ) -> Response:
        configuration = await _configuration(token)
        await self._throttle(request, "request", REQUESTS_PER_MINUTE)
        attempt = await self._attempt(configuration, attempt_id)
        outcome = await passcodes.request_code(
            settings_of(request), configuration, attempt.email, client_ip(request.scope)
        )
        return await self._after_request(request, configuration, outcome, attempt.email)

    # -- helpers -------------------------------------------------------------------------------
    async def _throttle(self, request: Request, bucket: str, limit: int) -> None:
        allowed = await throttle_of(request).hit(
            f"login:{bucket}:{client_ip(request.scope)}", limit, 60.0
        )
        if not allowed:
            raise TooManyRequestsException(headers={"Retry-After": "60"})

    async def _attempt(self, configuration: PortalConfiguration, attempt_id: str) -> LoginAttempt:
        attempt = await passcodes.get_attempt(configuration, attempt_id)
        if attempt is None:
            raise NotFoundException()
        return attempt

    async def _after_request(
        self,
        request: Request,
        configuration: PortalConfiguration,
        outcome: passcodes.RequestOutcome,
        email: str,
    ) -> Response:
        if outcome.attempt_id is None:
            # A limit set on another portal, and nothing of this portal's to show: stay on the
            # email step and say why.
            return page(
                request,
                "login/email.html",
                fragment="login_panel",
                status=429,
                context={
                    **_base(configuration),
                    **_urls(configuration),
                    "values": {"email": email},
                    "errors": {},
                    "reason": None,
                    "notice_text": _notice_text(outcome.notice, outcome.retry_after),
                },
            )
        url = _urls(configuration, outcome.attempt_id)["code_url"]
        if wants_fragment(request):
            attempt = await self._attempt(configuration, outcome.attempt_id)
            return self._code_page(
                request,
                configuration,
                attempt,
                notice=outcome.notice,
                retry_after=outcome.retry_after,
                push_url=url,
            )
        query = f"?notice={outcome.notice}"
        if outcome.retry_after:
            query += f"&wait={outcome.retry_after}"
        return see_other(request, url + query)

    def _code_page(
        self,
        request: Request,
        configuration: PortalConfiguration,
        attempt: LoginAttempt,
        *,
        notice: str = "",
        retry_after: int = 0,
        errors: dict[str, str] | None = None,
        status: int = 200,
        push_url: str | None = None,
    ) -> Response:
        problem = passcodes.state(attempt)
        return page(
            request,
            "login/code.html",
            fragment="login_panel",
            status=status,
            push_url=push_url,
            context={
                **_base(configuration),
                **_urls(configuration, attempt.id),
                "email": attempt.email,
                "notice": notice,
                "notice_text": _notice_text(notice, retry_after),
                "problem": _verdict_text(passcodes.VerifyOutcome(problem)) if problem else "",
                "usable": problem is None,
                "errors": errors or {},
                "lifetime_minutes": int(passcodes.CODE_LIFETIME.total_seconds() // 60),
            },
        )
