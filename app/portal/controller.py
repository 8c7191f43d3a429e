"""Customer-facing pages after sign-in."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide

from app.billing import queries
from app.configuration import service as configurations
from app.login import sessions
from app.portal import activity, page_cache
from app.portal.access import CustomerAccess, SignInRequired, customer_access, who
from app.portal.responses import render
from app.web.htmx import see_other
from app.web.state import settings_of


class PortalController(Controller):
    path = "/portal"
    dependencies = {"access": Provide(customer_access)}

    @get("/", name="portal:overview", opt=page_cache.CACHED)
    async def overview(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        # The customer row the session check just read: one query fewer per view.
        data = await queries.overview(access.customer.id, customer=access.customer)
        if data is None:  # the customer was deleted since the session began
            raise SignInRequired(access.configuration, "signed_out")
        return await render(request, access, "portal/overview.html", overview=data)

    @post("/sign-out", name="portal:sign_out")
    async def sign_out(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        settings = settings_of(request)
        cookie = sessions.cookie_name(sessions.CUSTOMER, settings)
        await sessions.end(request.cookies.get(cookie))
        await activity.record(
            who(request, access),
            "customer.signed_out",
            object_type="customer",
            object_id=access.customer.id,
        )
        target = f"{configurations.login_path(access.configuration)}?reason=signed_out"
        if not access.configuration.login_page_enabled:
            target = "/signed-out"
        response = see_other(request, target)
        response.delete_cookie(cookie, path="/")
        return response
