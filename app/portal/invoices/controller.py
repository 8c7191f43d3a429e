"""Invoice pages: history, one invoice, its PDF, paying an open invoice."""

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
from app.portal.details import tax_ids
from app.portal.invoices import service
from app.portal.responses import done
from app.web.forms import read_form
from app.web.htmx import VARY, page, see_other
from app.web.security import client_ip
from app.web.state import gateway_of

LIST_URL = "/portal/invoices"


def _actor(request: Request, access: CustomerAccess) -> audit.Actor:
    return audit.Actor(
        type="customer",
        id=access.customer.id,
        email=access.customer.email or "",
        ip=client_ip(request.scope),
        user_agent=request.headers.get("user-agent", ""),
    )


def _require_feature(access: CustomerAccess) -> None:
    if not service.enabled(configurations.features(access.configuration)):
        raise NotFoundException()


def invoice_url(invoice_id: str) -> str:
    return f"{LIST_URL}/{invoice_id}"


class InvoicesController(Controller):
    path = LIST_URL
    dependencies = {"access": Provide(customer_access)}

    @get("/", name="invoices:list")
    async def list_page(
        self, request: Request, access: NamedDependency[CustomerAccess]
    ) -> Response:
        _require_feature(access)
        wanted = service.page_number(request.query_params.get("page"))
        history = await service.history(access.customer.id, wanted)
        context: dict[str, Any] = {
            **await portal_context(access),
            "nav": "invoices",
            "history": history,
        }
        return page(request, "portal/invoices/list.html", fragment="main_content", context=context)

    @get("/{invoice_id:str}", name="invoices:detail")
    async def detail(
        self, request: Request, access: NamedDependency[CustomerAccess], invoice_id: FromPath[str]
    ) -> Response:
        _require_feature(access)
        return await self._detail(request, access, invoice_id)

    @get("/{invoice_id:str}/pdf", name="invoices:pdf")
    async def pdf(
        self, request: Request, access: NamedDependency[CustomerAccess], invoice_id: FromPath[str]
    ) -> Response:
        _require_feature(access)
        try:
            filename, document = await service.document(
                gateway_of(request),
                access.customer,
                invoice_id,
                business_name=configurations.branding(access.configuration)["business_name"] or "",
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except GatewayError as error:
            return await self._detail(request, access, invoice_id, errors={"pdf": error.message})
        if document.content is not None:
            return Response(
                content=document.content,
                media_type="application/pdf",
                headers={
                    "Content-Disposition": f'attachment; filename="{filename}"',
                    "Cache-Control": "private, no-store",
                    **VARY,
                },
            )
        if document.url:
            return see_other(request, document.url)
        raise NotFoundException()

    @post("/{invoice_id:str}/pay", name="invoices:pay")
    async def pay(
        self, request: Request, access: NamedDependency[CustomerAccess], invoice_id: FromPath[str]
    ) -> Response:
        _require_feature(access)
        data = await read_form(request)
        intent = intents.read_intent(data)
        try:
            if intent is None:
                await service.reference(access.customer, invoice_id)  # 404 before 422
                return await self._detail(
                    request,
                    access,
                    invoice_id,
                    errors={"pay": _("This form has expired. Try again.")},
                )
            number, result = await service.pay(
                gateway_of(request),
                access.customer,
                invoice_id,
                key=intents.idempotency_key(access.customer.id, "invoice.pay", intent),
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except GatewayError as error:
            return await self._detail(request, access, invoice_id, errors={"pay": error.message})
        if result.status == "redirect" and result.redirect_url:
            return see_other(request, result.redirect_url)
        return await done(
            request,
            access,
            invoice_url(invoice_id),
            _("Invoice %(number)s was paid.") % {"number": number},
        )

    async def _detail(
        self,
        request: Request,
        access: CustomerAccess,
        invoice_id: str,
        *,
        errors: dict[str, str] | None = None,
    ) -> Response:
        try:
            detail = await service.invoice(access.customer, invoice_id)
        except service.NotFound as missing:
            raise NotFoundException() from missing
        features = configurations.features(access.configuration)
        return page(
            request,
            "portal/invoices/detail.html",
            fragment="main_content",
            status=422 if errors else 200,
            context={
                **await portal_context(access),
                "nav": "invoices",
                "invoice": detail,
                "errors": errors or {},
                "new_intent": intents.new_intent,
                "can_add_payment_method": features.payment_method_update.enabled,
                "tax_id_label": tax_ids.label,
            },
        )
