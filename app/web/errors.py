"""Error pages: every failure is a full, friendly HTML page with the right status; no stack trace
ever reaches the browser.

The database being unreachable (``app.db.is_unavailable``: refused, reset, timed out, restarted,
too many connections) is not a bug: it answers 503 with ``Retry-After`` and the same friendly page
(which needs no database), so load balancers and people both know to come back shortly.
"""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.response import Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from app import db
from app.i18n import gettext as _

log = logging.getLogger("portico.web")


def _titles() -> dict[int, tuple[str, str]]:
    return {
        400: (
            _("Something in that request was not right"),
            _("Go back, check the form and try again."),
        ),
        401: (_("You are signed out"), _("Open your sign-in link again to continue.")),
        403: (
            _("This form has expired"),
            _("For your security, forms expire. Go back, reload the page and try again."),
        ),
        404: (_("Page not found"), _("The link may be wrong, or the page no longer exists.")),
        405: (_("That action is not available here"), _("Go back and use the page's buttons.")),
        413: (_("That upload is too large"), _("Choose a smaller file and try again.")),
        429: (_("Too many requests"), _("Please wait a minute, then try again.")),
        503: (
            _("We are having trouble right now"),
            _("The service is temporarily unavailable. Please try again in a moment."),
        ),
    }


def error_page(status: int, *, title: str | None = None, message: str | None = None) -> Response:
    default_title, default_message = _titles().get(
        status, (_("Something went wrong"), _("Please try again in a moment."))
    )
    return Template(
        template_name="errors/error.html",
        context={
            "status": status,
            "title": title or default_title,
            "message": message or default_message,
        },
        status_code=status,
        media_type=MediaType.HTML,
    )


def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        status = HTTP_400_BAD_REQUEST
    headers = dict(exc.headers or {})
    response = error_page(status)
    response.headers.update(headers)
    return response


def not_found_handler(request: Request, exc: NotFoundException) -> Response:
    return error_page(404)


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(HTTP_500_INTERNAL_SERVER_ERROR)


RETRY_AFTER_SECONDS = 5


def database_unavailable_page() -> Response:
    response = error_page(HTTP_503_SERVICE_UNAVAILABLE)
    response.headers.update({"retry-after": str(RETRY_AFTER_SECONDS), "cache-control": "no-store"})
    return response


def unavailable_or_internal_handler(request: Request, exc: Exception) -> Response:
    """A database outage is a 503 (logged as a warning, without the traceback); any other error
    of these types is a bug (500)."""
    if not db.is_unavailable(exc):
        return internal_error_handler(request, exc)
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
    )
    return database_unavailable_page()


def exception_handlers() -> dict:
    # Every error that is not an HTTP answer goes through the one outage check.
    return {
        NotFoundException: not_found_handler,
        HTTPException: http_exception_handler,
        HTTP_500_INTERNAL_SERVER_ERROR: unavailable_or_internal_handler,
        Exception: unavailable_or_internal_handler,
    }
