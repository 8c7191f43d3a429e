"""Customer-facing pages after sign-in."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide

from app.audit import service as audit
from app.billing import queries
from app.configuration import service as configurations
from app.login import sessions
from app.portal.access import CustomerAccess, SignInRequired, customer_access
from app.web import formatting
from app.web.htmx import page, see_other
from app.web.security import client_ip
from app.web.state import settings_of


async def portal_context(access: CustomerAccess) -> dict[str, Any]:
    """What every portal page shows around its content."""
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
    }


class PortalController(Controller):
    path = "/portal"
    dependencies = {"access": Provide(customer_access)}

    @get("/", name="portal:overview")
    async def overview(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        data = await queries.overview(access.customer.id)
        if data is None:  # the customer was deleted since the session began
            raise SignInRequired(access.configuration, "signed_out")
        return page(
            request,
            "portal/overview.html",
            fragment="main_content",
            context={**await portal_context(access), "overview": data},
        )

    @post("/sign-out", name="portal:sign_out")
    async def sign_out(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        settings = settings_of(request)
        cookie = sessions.cookie_name(sessions.CUSTOMER, settings)
        await sessions.end(request.cookies.get(cookie))
        await audit.record(
            audit.Actor(
                type="customer",
                id=access.customer.id,
                email=access.customer.email or "",
                ip=client_ip(request.scope),
                user_agent=request.headers.get("user-agent", ""),
            ),
            "customer.signed_out",
            configuration=access.configuration.id,
            object_type="customer",
            object_id=access.customer.id,
        )
        target = f"{configurations.login_path(access.configuration)}?reason=signed_out"
        if not access.configuration.login_page_enabled:
            target = "/signed-out"
        response = see_other(request, target)
        response.delete_cookie(cookie, path="/")
        return response
