"""Subscription pages: list, change plan (choose → preview → confirm), cancel (reasons → offer or
confirmation → confirm), renew, pause and resume.

Every action is a plain form (POST → 303 → page with a flash) that htmx enhances (``hx-post`` to the
same URL, ``#main-content`` swapped, success through ``done``). Invalid input re-renders the form
with its messages and 422 (``flow.submit``). A switched-off feature's routes answer 404, and so
does another customer's subscription id.

One controller per flow; ``SubscriptionsController`` is the router the app registers for them.
"""

from __future__ import annotations

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from app import clock
from app.portal.access import CustomerAccess, customer_access
from app.portal.subscriptions import eligibility, messages, writes
from app.portal.subscriptions.cancel_controller import CancelController
from app.portal.subscriptions.change_controller import ChangeController
from app.portal.subscriptions.flow import LIST_URL, subscription
from app.portal.subscriptions.listing import list_action, list_page
from app.portal.subscriptions.pause_controller import PauseController
from app.web.htmx import see_other


class ListController(Controller):
    @get("/", name="portal:subscriptions")
    async def index(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        return await list_page(request, access)

    @get("/{subscription_id:str}/renew", name="portal:subscription_renew_get")
    async def renew_get(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        await subscription(access, subscription_id)
        return see_other(request, LIST_URL)

    @post("/{subscription_id:str}/renew", name="portal:subscription_renew", status_code=200)
    async def renew(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        sub = await subscription(access, subscription_id)
        return await list_action(
            request,
            access,
            sub,
            messages.RENEWED,
            eligibility.renew_blocker(sub, clock.now()),
            writes.renew,
        )


SubscriptionsController = Router(
    path=LIST_URL,
    route_handlers=[ListController, ChangeController, CancelController, PauseController],
    dependencies={"access": Provide(customer_access)},
)
