"""The list page: the customer's subscriptions with the controls each offers, and the
one-button actions on it (renew, resume), whose problems show beside their subscription."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar import Request, Response

from app import clock
from app.billing import queries
from app.billing.gateway import BillingGateway
from app.billing.queries import SubscriptionView
from app.portal.access import CustomerAccess
from app.portal.access import features as access_features
from app.portal.activity import Who
from app.portal.intents import Issuer
from app.portal.subscriptions import eligibility, plans
from app.portal.subscriptions.flow import Errors, blocked, page, submit
from app.portal.subscriptions.messages import discount_terms
from app.web.state import gateway_of


async def list_page(
    request: Request,
    access: CustomerAccess,
    errors: Errors | None = None,
    status: int = 200,
    new_intent: Issuer | None = None,
) -> Response:
    features = access_features(access)
    update = features.subscription_update
    catalogue = await plans.catalogue(update) if update.enabled else []
    now = clock.now()
    rows = []
    for sub in await queries.subscriptions(access.customer.id, now=now):
        options = plans.build_options(update, sub, catalogue) if update.enabled else []
        rows.append({"sub": sub, "actions": eligibility.actions(features, sub, options, now)})
    return await page(
        request,
        access,
        "list.html",
        status=status,
        rows=rows,
        errors=errors or {},
        new_intent=new_intent or Issuer(),
        discount_terms=discount_terms,
    )


async def list_action(
    request: Request,
    access: CustomerAccess,
    sub: SubscriptionView,
    action: str,
    blocker: str | None,
    write: Callable[[BillingGateway, Who, SubscriptionView, str], Awaitable[SubscriptionView]],
) -> Response:
    """A one-button action on the list (renew, resume): problems show on the list, beside the
    subscription (the element ``sub-<id>``)."""
    anchor = f"sub-{sub.id}"
    return await submit(
        request,
        access,
        sub,
        action,
        check=lambda data: (None, blocked(blocker, at=anchor)),
        run=lambda who, key, _none: write(gateway_of(request), who, sub, key),
        show=lambda data, errors, status, issuer: list_page(
            request, access, errors, status, issuer
        ),
        form=anchor,
    )
