"""Billing details page: name, addresses, phone (as the configuration allows) and tax IDs."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.audit import service as audit
from app.billing.gateway import GatewayError
from app.configuration import service as configurations
from app.i18n import gettext as _
from app.portal import intents
from app.portal.access import CustomerAccess, customer_access
from app.portal.controller import portal_context
from app.portal.details import forms, service, tax_ids
from app.portal.responses import done
from app.web.forms import read_form
from app.web.htmx import page
from app.web.security import client_ip
from app.web.state import gateway_of

DETAILS_URL = "/portal/details"
DETAIL_FIELDS = frozenset(forms.fields_for(list(forms.GROUPS)))


def _actor(request: Request, access: CustomerAccess) -> audit.Actor:
    return audit.Actor(
        type="customer",
        id=access.customer.id,
        email=access.customer.email or "",
        ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent", ""),
    )


def _allowed(access: CustomerAccess) -> list[str]:
    features = configurations.features(access.configuration)
    if not service.enabled(features):
        raise NotFoundException()
    return service.allowed_updates(features)


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
        if not forms.fields_for(allowed):
            raise NotFoundException()
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
                access.customer,
                details,
                allowed,
                key=intents.idempotency_key(access.customer.id, "customer.update", intent),
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except GatewayError as error:
            field = error.field if error.field in DETAIL_FIELDS else "details-title"
            return await self._page(
                request, access, allowed, values=values, errors={field: error.message}
            )
        return await done(request, access, DETAILS_URL, _("Your billing details were saved."))

    @post("/tax-ids", name="details:add_tax_id")
    async def add_tax_id(
        self, request: Request, access: NamedDependency[CustomerAccess]
    ) -> Response:
        allowed = _allowed(access)
        if "tax_id" not in allowed:
            raise NotFoundException()
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
                access.customer,
                type_code=type_code,
                value=value,
                key=intents.idempotency_key(access.customer.id, "customer.tax_id_add", intent),
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except GatewayError as error:
            field = {"type": "tax_id_type"}.get(error.field or "", "tax_id_value")
            return await self._page(
                request, access, allowed, tax_values=tax_values, errors={field: error.message}
            )
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
        if "tax_id" not in allowed:
            raise NotFoundException()
        data = await read_form(request)
        intent = intents.read_intent(data)
        anchor = f"tax-id-{tax_id}"
        try:
            if intent is None:
                if not any(t.id == tax_id for t in await service.tax_ids_of(access.customer.id)):
                    raise service.NotFound(tax_id)
                return await self._page(
                    request,
                    access,
                    allowed,
                    errors={anchor: _("This form has expired. Try again.")},
                )
            removed = await service.remove_tax_id(
                gateway_of(request),
                access.customer,
                tax_id,
                key=intents.idempotency_key(access.customer.id, "customer.tax_id_remove", intent),
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except GatewayError as error:
            return await self._page(request, access, allowed, errors={anchor: error.message})
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
        *,
        values: dict[str, str] | None = None,
        tax_values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Response:
        context: dict[str, Any] = {
            **await portal_context(access),
            "nav": "details",
            "allowed": allowed,
            "values": values or forms.current_values(access.customer),
            "tax_values": tax_values or {"tax_id_type": "eu_vat", "tax_id_value": ""},
            "errors": errors or {},
            "countries": forms.countries(),
            "country_name": forms.country_name,
            "tax_id_types": tax_ids.choices(),
            "tax_id_label": tax_ids.label,
            "tax_ids": await service.tax_ids_of(access.customer.id) if "tax_id" in allowed else [],
            "new_intent": intents.new_intent,
        }
        return page(
            request,
            "portal/details/edit.html",
            fragment="main_content",
            status=422 if errors else 200,
            context=context,
        )
