"""Billing details page: name, addresses, phone (as the configuration allows) and tax IDs."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.billing.gateway import GatewayError
from app.i18n import gettext as _
from app.portal import intents
from app.portal.access import CustomerAccess, customer_access, features_on, require, who
from app.portal.details import forms, service, tax_ids
from app.portal.intents import Issuer
from app.portal.responses import done, expired, gateway_failure, render
from app.web.forms import read_form
from app.web.state import gateway_of

DETAILS_URL = "/portal/details"
# Where the gateway's messages go: its own field names are the form's.
DETAIL_FIELDS = {name: name for name in forms.fields_for(list(forms.GROUPS))}
TAX_ID_FIELDS = {"type": "tax_id_type", "value": "tax_id_value"}


def _allowed(access: CustomerAccess) -> list[str]:
    """What the customer may change; 404 when the feature is off."""
    return service.allowed_updates(features_on(access, service.enabled))


class DetailsController(Controller):
    path = DETAILS_URL
    dependencies = {"access": Provide(customer_access)}

    @get("/", name="details:edit")
    async def edit(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        allowed = _allowed(access)
        return await self._page(request, access, allowed)

    @post("/", name="details:save")
    async def save(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        allowed = _allowed(access)
        require(forms.fields_for(allowed))
        data = await read_form(request)
        values, errors, details = forms.read_details(data, allowed, access.customer)
        intent = intents.read_intent(data)
        if intent is None:
            errors = {
                "details-title": _("This form has expired. Check your details and save again.")
            }
        if errors:
            return await self._page(request, access, allowed, values=values, errors=errors)
        try:
            await service.save(
                gateway_of(request),
                who(request, access),
                access.customer,
                details,
                allowed,
                key=intents.idempotency_key(access.customer.id, "customer.update", intent),
            )
        except GatewayError as error:
            failure = gateway_failure(
                error, form="details-title", intent=intent, fields=DETAIL_FIELDS
            )
            return await self._page(request, access, allowed, *failure, values=values)
        return await done(request, access, DETAILS_URL, _("Your billing details were saved."))

    @post("/tax-ids", name="details:add_tax_id")
    async def add_tax_id(
        self, request: Request, access: NamedDependency[CustomerAccess]
    ) -> Response:
        allowed = _allowed(access)
        require("tax_id" in allowed)
        data = await read_form(request)
        tax_values, errors, type_code, value = forms.read_tax_id(data)
        intent = intents.read_intent(data)
        if intent is None:
            errors = {"tax_id_value": _("This form has expired. Enter the tax ID again.")}
        if errors:
            return await self._page(request, access, allowed, tax_values=tax_values, errors=errors)
        try:
            await service.add_tax_id(
                gateway_of(request),
                who(request, access),
                access.customer,
                type_code=type_code,
                value=value,
                key=intents.idempotency_key(access.customer.id, "customer.tax_id_add", intent),
            )
        except GatewayError as error:
            failure = gateway_failure(
                error, form="tax_id_value", intent=intent, fields=TAX_ID_FIELDS
            )
            return await self._page(request, access, allowed, *failure, tax_values=tax_values)
        return await done(
            request, access, DETAILS_URL, _("Tax ID %(value)s was added.") % {"value": value}
        )

    @post("/tax-ids/{tax_id:str}/remove", name="details:remove_tax_id")
    async def remove_tax_id(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        tax_id: FromPath[str],
    ) -> Response:
        allowed = _allowed(access)
        require("tax_id" in allowed)
        data = await read_form(request)
        intent = intents.read_intent(data)
        anchor = f"tax-id-{tax_id}"
        try:
            if intent is None:
                if not any(t.id == tax_id for t in await service.tax_ids_of(access.customer.id)):
                    raise service.NotFound(tax_id)
                return await self._page(request, access, allowed, {anchor: expired()})
            removed = await service.remove_tax_id(
                gateway_of(request),
                who(request, access),
                access.customer,
                tax_id,
                key=intents.idempotency_key(access.customer.id, "customer.tax_id_remove", intent),
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except GatewayError as error:
            failure = gateway_failure(error, form=anchor, intent=intent)
            return await self._page(request, access, allowed, *failure)
        message = (
            _("Tax ID %(value)s was removed.") % {"value": removed.value}
            if removed
            else _("The tax ID was removed.")
        )
        return await done(request, access, DETAILS_URL, message)

    async def _page(
        self,
        request: Request,
        access: CustomerAccess,
        allowed: list[str],
        errors: dict[str, str] | None = None,
        status: int | None = None,
        new_intent: Issuer | None = None,
        *,
        values: dict[str, str] | None = None,
        tax_values: dict[str, str] | None = None,
    ) -> Response:
        return await render(
            request,
            access,
            "portal/details/edit.html",
            nav="details",
            status=status,
            allowed=allowed,
            values=values or forms.current_values(access.customer),
            tax_values=tax_values or {"tax_id_type": "eu_vat", "tax_id_value": ""},
            errors=errors or {},
            new_intent=new_intent or Issuer(),
            countries=forms.countries(),
            country_name=forms.country_name,
            tax_id_types=tax_ids.choices(),
            tax_id_label=tax_ids.label,
            tax_ids=await service.tax_ids_of(access.customer.id) if "tax_id" in allowed else [],
        )
