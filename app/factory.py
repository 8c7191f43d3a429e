"""``create_app(settings)``: the whole application, wired once."""

from __future__ import annotations

import hashlib
import hmac
import logging

from litestar import Litestar, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.plugins.htmx import HTMXPlugin

from app import db, memory
from app import logging as app_logging
from app.billing.provider import make_gateway
from app.billing.webhooks import stripe_webhook
from app.configuration.controller import BrandingController
from app.login import delivery, sessions
from app.login.controller import LoginController
from app.mail import service as mail
from app.mail import settings as mail_settings
from app.mail.catcher import MailCatcher, inbox_controller
from app.mail.transport import SmtpConfig
from app.mail.worker import DeliveryWorker
from app.merchant.routes import CONTROLLERS as MERCHANT_CONTROLLERS
from app.portal import page_cache
from app.portal.access import SignInRequired, sign_in_required_handler
from app.portal.controller import PortalController
from app.portal.details.controller import DetailsController
from app.portal.invoices.controller import InvoicesController
from app.portal.payment_methods.controller import PaymentMethodsController
from app.portal.subscriptions.controller import SubscriptionsController
from app.settings import Settings
from app.web import health
from app.web.errors import error_page, exception_handlers
from app.web.redis_store import RedisStore
from app.web.security import SecurityHeaders
from app.web.static import default_files
from app.web.templating import make_environment, template_config
from app.web.throttle import MemoryThrottle, RedisThrottle, Throttle

log = logging.getLogger("portico")

MAX_BODY_BYTES = 1024 * 1024  # uploads are at most 512 KB; anything larger is refused with 413


def _csrf(settings: Settings) -> CSRFConfig:
    secret = hmac.new(settings.secret_key.encode(), b"portico/csrf", hashlib.sha256).hexdigest()
    return CSRFConfig(
        secret=secret,
        cookie_name="__Host-csrftoken" if settings.is_https else "csrftoken",
        cookie_secure=settings.is_https,
        cookie_httponly=True,
        cookie_samesite="lax",
        exclude=["/webhooks/stripe"],
    )


def smtp_config(
    settings: Settings,
    catcher: MailCatcher | None,
    stored: mail_settings.StoredMail | None = None,
) -> SmtpConfig:
    """Environment variables first, then the settings stored on the email delivery page, then
    the demo's mail catcher (``app.mail.settings.effective``)."""
    config = mail_settings.effective(settings, stored, catcher.port if catcher is not None else 0)
    if config is None:
        raise RuntimeError(
            "no SMTP server is configured (set PORTICO_SMTP_HOST or save one on the email "
            "delivery settings page)"
        )
    return config


async def refuse_large_bodies(request: Request) -> None:
    """A declared body over the limit is refused with 413 before any handler runs, also for
    handlers that never read their body (those that do are stopped by the same limit anyway)."""
    length = request.headers.get("content-length", "")
    # A route may allow more (the branding upload, whose own validation explains the 512 KB rule).
    limit = request.route_handler.resolve_request_max_body_size() or MAX_BODY_BYTES
    if length.isdigit() and int(length) > limit:
        raise HTTPException(status_code=413)


async def before_request(request: Request) -> Response | None:
    """Before every handler: the body size limit, then a kept page for the handlers that allow
    one (``app.portal.page_cache``)."""
    await refuse_large_bodies(request)
    if request.route_handler.opt.get("page_cache"):
        return await page_cache.serve(request)
    return None


@get("/signed-out", name="signed_out")
async def signed_out_page() -> Response:
    return error_page(401)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    settings.require_secret_key()
    if settings.log_format:  # PORTICO_LOG_FORMAT (portico serve also sets it for its workers)
        app_logging.configure(settings.log_format)
    memory.limit_malloc_arenas()  # before the threads a server starts (app/memory.py)
    engine = db.make_engine(settings.resolved_database_url)
    db.bind(engine)
    environment = make_environment(settings)
    catcher = MailCatcher() if settings.mail_catcher and not settings.smtp_host else None
    stored_mail = mail_settings.StoredMailCache(settings)
    worker = DeliveryWorker(
        settings, environment, lambda: smtp_config(settings, catcher, stored_mail.current)
    )
    gateway = make_gateway(settings)
    mail.register("passcode", delivery.passcode_preparer(settings, gateway))
    # PORTICO_REDIS_URL: per-address throttles shared by every instance, and a session cache in
    # front of the sessions table. Without it (or while Redis is down): this process and the
    # database, as before.
    redis = RedisStore(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
    throttle: Throttle = RedisThrottle(redis) if redis is not None else MemoryThrottle()
    session_cache = sessions.SessionCache(redis, settings.secret_key) if redis is not None else None
    replaced_cache: list[sessions.SessionCache | None] = []

    async def on_startup(app: Litestar) -> None:
        db.bind(engine)
        await db.start(engine, command_timeout=db.COMMAND_TIMEOUT)  # requests never hang
        replaced_cache.append(sessions.use_cache(session_cache))
        if redis is not None and await redis.ping():
            log.info("Redis in use for per-address limits and the session cache.")
        await stored_mail.start()
        if catcher is not None:
            await catcher.start()
        if settings.run_mail_worker:
            worker.start()
        memory.freeze_startup_objects()  # out of the garbage collector's way (app/memory.py)

    async def on_shutdown(app: Litestar) -> None:
        await worker.stop()
        aclose = getattr(gateway, "aclose", None)  # the Stripe gateway's HTTP client
        if aclose is not None:
            await aclose()
        if catcher is not None:
            await catcher.stop()
        await stored_mail.stop()
        if sessions.current_cache() is session_cache and replaced_cache:
            sessions.use_cache(replaced_cache.pop())
        if redis is not None:
            await redis.aclose()
        await db.stop(engine)

    handlers: list = [
        LoginController,
        BrandingController,
        PortalController,
        SubscriptionsController,
        PaymentMethodsController,
        InvoicesController,
        DetailsController,
        signed_out_page,
        *health.HANDLERS,  # /healthz, /readyz
        stripe_webhook,  # 404 unless PORTICO_BILLING=stripe; exempt from CSRF (signed)
        *MERCHANT_CONTROLLERS,
        default_files().route_handler(),  # /static: from memory, ETag, versioned URLs
    ]
    if catcher is not None:
        handlers.append(inbox_controller(catcher))

    app = Litestar(
        route_handlers=handlers,
        plugins=[HTMXPlugin()],
        template_config=template_config(settings),
        csrf_config=_csrf(settings),
        # A before_send hook, not a middleware: it also sees the router's own 404/405 pages.
        before_send=[SecurityHeaders(settings)],
        exception_handlers={
            **exception_handlers(),
            SignInRequired: sign_in_required_handler,
        },
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        request_max_body_size=MAX_BODY_BYTES,
        before_request=before_request,
        state=State(
            {
                "settings": settings,
                "throttle": throttle,
                "redis": redis,
                "gateway": gateway,
                "worker": worker,
                "catcher": catcher,
                "mail_settings": stored_mail,
                "environment": environment,
                "page_cache": page_cache.from_settings(settings),
            }
        ),
        openapi_config=None,  # an HTML product: no API schema is published
        logging_config=None,  # logging is the process's (app.logging), not rewired per app
        debug=False,
    )
    # Around the whole handler (router included): a request id and one access line per request.
    # Kept portal pages are sent before routing (app.portal.page_cache.FastPath).
    app.asgi_handler = app_logging.RequestLog(page_cache.FastPath(app.asgi_handler))
    return app
