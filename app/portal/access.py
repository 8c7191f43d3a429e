"""Who is signed in: the customer session behind the cookie, or a way back to the login link.

Every portal handler takes ``access: CustomerAccess`` (a dependency); every object it touches is
looked up through ``access.customer``, never through an id alone. Also here, for every portal
controller: ``who`` (the customer as the audit log names them) and ``features_on`` / ``require``
(a switched-off feature's pages answer 404).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException

from app.audit import service as audit
from app.billing.tables import Customer
from app.configuration import service as configurations
from app.configuration.features import Features
from app.configuration.tables import PortalConfiguration
from app.login import sessions
from app.portal.activity import Who
from app.web.errors import error_page
from app.web.htmx import see_other
from app.web.security import client_ip
from app.web.state import settings_of


class CustomerAccess(msgspec.Struct):
    customer: Customer
    configuration: PortalConfiguration
    session: sessions.Active


class SignInRequired(HTTPException):
    status_code = 401

    def __init__(self, configuration: PortalConfiguration | None, reason: str) -> None:
        super().__init__(detail="sign-in required")
        self.configuration = configuration
        self.reason = reason


async def customer_access(request: Request) -> CustomerAccess:
    settings = settings_of(request)
    token = request.cookies.get(sessions.cookie_name(sessions.CUSTOMER, settings))
    found = await sessions.resume(sessions.CUSTOMER, token)
    if isinstance(found, sessions.Expired):
        configuration = await configurations.get(found.configuration or "")
        raise SignInRequired(configuration, "expired")
    if found is None:
        raise SignInRequired(None, "signed_out")
    customer = (
        await Customer.objects()
        .where((Customer.id == found.subject) & (Customer.deleted.eq(False)))
        .first()
    )
    configuration = await configurations.get(found.configuration or "")
    if customer is None or configuration is None or not configuration.active:
        await sessions.end(token)
        raise SignInRequired(configuration, "signed_out")
    return CustomerAccess(customer=customer, configuration=configuration, session=found)


def who(request: Request, access: CustomerAccess) -> Who:
    """The signed-in customer as the audit log records them: id, email, address and browser."""
    return Who(
        actor=audit.Actor(
            type="customer",
            id=access.customer.id,
            email=access.customer.email or "",
            ip=client_ip(request.scope),
            user_agent=request.headers.get("user-agent", ""),
        ),
        configuration=access.configuration.id,
    )


def require(condition: object) -> None:
    """404 unless ``condition``: a switched-off feature, or a part of it, is not there at all."""
    if not condition:
        raise NotFoundException()


def features(access: CustomerAccess) -> Features:
    """What the customer's portal configuration turns on."""
    return configurations.features(access.configuration)


def features_on(access: CustomerAccess, switch: Callable[[Features], object]) -> Features:
    """The configuration's features; 404 when ``switch`` says the page's feature is off."""
    found = features(access)
    require(switch(found))
    return found


def sign_in_required_handler(request: Request, exc: SignInRequired) -> Response:
    """Back to the configuration's login link with a message when we know it and it is on;
    otherwise a signed-out page (the link is not revealed to someone with no session)."""
    configuration = exc.configuration
    if configuration is not None and configuration.login_page_enabled and configuration.active:
        url = f"{configurations.login_path(configuration)}?reason={exc.reason}"
        response = see_other(request, url)
    else:
        response = error_page(401)
    response.delete_cookie(sessions.cookie_name(sessions.CUSTOMER, settings_of(request)), path="/")
    return response
