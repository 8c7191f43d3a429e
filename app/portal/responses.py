"""How portal pages and actions answer.

- A page: ``render`` (the whole page, or its ``main_content`` block for htmx, see ``page()``) with
  ``portal_context`` around the page's own values; status 422 when there are ``errors``.

- Success: the flash message goes into the session, then no-JS gets ``303`` to the next page and
  htmx gets ``HX-Location`` (an ajax GET of that page whose ``main_content`` fragment replaces
  ``#main-content`` and whose URL is pushed), so both paths end on the same URL showing the same
  message.
- Invalid input: the caller re-renders its form with ``page(..., status=422)``.
- A gateway failure (``gateway_failure``): the same form again, the message beside its field (or
  at the form's name), 422, or 502 when billing did not answer (``page()`` then sends the whole
  page, which htmx swaps into ``<body>``), and the intents the form gets (see ``intents``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from litestar import Request, Response

from app.billing import health
from app.billing.gateway import GatewayError, GatewayUnavailable
from app.configuration import service as configurations
from app.i18n import gettext as _
from app.login import sessions
from app.portal import page_cache
from app.portal.access import CustomerAccess
from app.portal.intents import Issuer, after_failure
from app.web import formatting
from app.web.htmx import VARY, page, see_other, wants_fragment


async def portal_context(access: CustomerAccess, nav: str = "overview") -> dict[str, Any]:
    """What every portal page shows around its content; ``nav`` is the current page's menu entry.
    Pages add their own values, ``errors`` and ``new_intent`` replaced on a failed submit."""
    configuration = access.configuration
    return {
        "configuration": configuration,
        "brand": configurations.branding(configuration),
        "features": configurations.features(configuration),
        "customer": access.customer,
        "tz": access.customer.time_zone,
        "tz_name": formatting.zone_name(access.customer.time_zone),
        "flashes": await sessions.pop_flash(access.session),
        "signed_in": True,
        "nav": nav,
        "errors": {},
        "new_intent": Issuer(),
    }


async def render(
    request: Request,
    access: CustomerAccess,
    template: str,
    *,
    nav: str = "overview",
    status: int | None = None,
    **values: Any,
) -> Response:
    """A portal page with ``values``; the status defaults to 422 when ``errors`` has any. While
    the billing provider is unreachable, the page says so in its status region."""
    context = {**await portal_context(access, nav), **values}
    notice = health.billing_notice(request)
    if notice:
        context["flashes"] = [{"message": notice, "level": "warning"}, *context["flashes"]]
    if status is None:
        status = 422 if context["errors"] else 200
    response = page(request, template, fragment="main_content", context=context, status=status)
    ticket = page_cache.ticket(request)
    if ticket is not None and status == 200 and not context["flashes"]:
        return page_cache.keep(request, ticket, response)
    return response


async def done(
    request: Request, access: CustomerAccess, url: str, message: str, level: str = "success"
) -> Response:
    await sessions.push_flash(access.session, message, level)
    if wants_fragment(request):
        location = json.dumps({"path": url, "target": "#main-content"})
        return Response(content=b"", status_code=200, headers={**VARY, "HX-Location": location})
    return see_other(request, url)


def expired() -> str:
    """The message for a form whose intent is missing (a form from before, or tampered with)."""
    return _("This form has expired. Try again.")


class Failure(NamedTuple):
    errors: dict[str, str]
    status: int
    new_intent: Issuer


def gateway_failure(
    error: GatewayError,
    *,
    form: str,
    intent: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> Failure:
    """``fields`` maps the gateway's ``error.field`` to the form's field names; any other message
    goes to ``form`` (the element the form's errors go to, also the form's name for intents)."""
    field = (fields or {}).get(error.field or "", form)
    status = 502 if isinstance(error, GatewayUnavailable) else 422
    return Failure({field: error.message}, status, after_failure(error, intent, form))
