"""The Stripe settings page (``/merchant/stripe``): is the key right, where do webhooks go, and
is the local copy up to date.

- ``GET /merchant/stripe``: in Stripe mode, the key check (``GET /v1/account``), the webhook
  endpoint to configure, and the recorded sync runs (a running one shows its progress: reload
  the page to follow it; no JavaScript needed). In sandbox mode: Stripe is not in use, and the
  environment variables that turn it on.
- ``POST /merchant/stripe/sync`` (**Sync now**): starts a sync in the background of this process
  (one at a time) and answers at once with a message; see ``app.merchant.stripe_status``.
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide

from app.billing.stripe_gateway import StripeGateway
from app.configuration import service as configurations
from app.i18n import gettext as _
from app.merchant import stripe_status
from app.merchant.access import EXCEPTION_HANDLERS, MerchantAccess, actor, done, merchant_access
from app.merchant.settings import merchant_context
from app.web.htmx import page
from app.web.state import gateway_of, settings_of

PATH = "/merchant/stripe"
SYNC_PATH = f"{PATH}/sync"


def _stripe_gateway(request: Request) -> StripeGateway | None:
    gateway = gateway_of(request)
    return gateway if isinstance(gateway, StripeGateway) else None


class MerchantStripeController(Controller):
    path = PATH
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="merchant:stripe")
    async def overview(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        configuration = await configurations.ensure_default(actor(request, access))
        context = {
            **await merchant_context(access, configuration, "stripe"),
            "stripe_urls": {"page": PATH, "sync": SYNC_PATH},
            "env_vars": stripe_status.env_vars(),
        }
        gateway = _stripe_gateway(request)
        if gateway is not None:
            context.update(
                {
                    "key": await stripe_status.check_key(gateway),
                    "webhook": await stripe_status.webhook(settings_of(request)),
                    "sync": await stripe_status.sync_status(gateway),
                }
            )
        context["stripe_mode"] = gateway is not None
        return page(
            request, "merchant/stripe/settings.html", fragment="main_content", context=context
        )

    @post("/sync", name="merchant:stripe_sync")
    async def sync_now(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        gateway = _stripe_gateway(request)
        if gateway is None:
            return await done(
                request,
                access,
                PATH,
                _("Stripe is not in use, so there is nothing to sync."),
                level="error",
            )
        run_id = await stripe_status.start_sync(gateway, actor(request, access))
        if run_id is None:
            return await done(
                request,
                access,
                PATH,
                _("A sync is already running. Reload this page to follow it."),
                level="warning",
            )
        return await done(
            request,
            access,
            PATH,
            _("The sync started. It runs in the background: reload this page to follow it."),
        )
