"""What the passcode email needs at delivery time (see app.mail.worker): the attempt must still be
usable and the address must belong to a customer, else nothing is sent."""

from __future__ import annotations

import logging
from typing import Any

from app.billing.gateway import BillingGateway, GatewayError
from app.billing.queries import choose_customer
from app.configuration import colours
from app.configuration import service as configurations
from app.i18n import gettext as _
from app.login import passcodes
from app.mail import service as mail
from app.mail.tables import OutboxMessage
from app.settings import Settings

log = logging.getLogger("portico.login")


def passcode_preparer(settings: Settings, gateway: BillingGateway) -> mail.Preparer:
    async def prepare(message: OutboxMessage, secrets: dict[str, Any]) -> mail.Prepared | None:
        if not secrets.get("code") or not message.reference:
            return None
        if await passcodes.is_deliverable(message.reference) is None:
            return None  # superseded, used, burned or expired since it was queued
        customer = await choose_customer(message.to_address)
        if customer is None:
            # Stripe mode: the customer may exist in Stripe but not yet in the mirror. Asked here,
            # after the response, so the sign-in page answers the same for every email.
            try:
                if await gateway.discover_customers(message.to_address):
                    customer = await choose_customer(message.to_address)
            except GatewayError:
                log.warning("could not look the address up in the billing provider")
        if customer is None:
            return None  # nothing is ever sent to an address that is not a customer's
        configuration = await configurations.get(message.configuration or "")
        if configuration is None:
            return None
        business = configuration.business_name or "Portico"
        brand, brand_text = colours.fill(configuration.brand_color)
        minutes = int(passcodes.CODE_LIFETIME.total_seconds() // 60)
        return mail.Prepared(
            subject=_("Your %(business)s sign-in code") % {"business": business},
            context={
                "business_name": business,
                "sender_name": business,
                "customer_name": customer.name or "",
                "brand_color": brand,
                "brand_text": brand_text,
                "lifetime_minutes": minutes,
                "host": settings.host,
                "login_url": settings.base_url.rstrip("/")
                + configurations.login_path(configuration),
            },
        )

    return prepare
