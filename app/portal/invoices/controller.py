"""Invoice pages: history, one invoice, its PDF, paying an open invoice."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.billing.gateway import GatewayError
from app.configuration import service as configurations
from app.i18n import gettext as _
from app.portal import intents, page_cache
from app.portal.access import CustomerAccess, customer_access, features, features_on, who
from app.portal.details import tax_ids
from app.portal.intents import Issuer
from app.portal.invoices import service
from app.portal.responses import done, expired, gateway_failure, render
from app.web.forms import read_form
from app.web.htmx import VARY, see_other
from app.web.state import gateway_of

LIST_URL = "/portal/invoices"


def invoice_url(invoice_id: str) -> str:
    return f"{LIST_URL}/{invoice_id}"


class InvoicesController(Controller):
    path = LIST_URL
    dependencies = {"access": Provide(customer_access)}

    @get("/", name="invoices:list", opt=page_cache.CACHED)
    async def list_page(
        self, request: Request, access: NamedDependency[CustomerAccess]
    ) -> Response:
        features_on(access, service.enabled)
        wanted = service.page_number(request.query_params.get("page"))
        history = await service.history(access.customer.id, wanted)
        return await render(
            request, access, "portal/invoices/list.html", nav="invoices", history=history
        )

    @get("/{invoice_id:str}", name="invoices:detail")
    async def detail(
        self, request: Request, access: NamedDependency[CustomerAccess], invoice_id: FromPath[str]
    ) -> Response:
        features_on(access, service.enabled)
        return await self._detail(request, access, invoice_id)

    @get("/{invoice_id:str}/pdf", name="invoices:pdf")
    async def pdf(
        self, request: Request, access: NamedDependency[CustomerAccess], invoice_id: FromPath[str]
    ) -> Response:
        features_on(access, service.enabled)
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
            failure = gateway_failure(error, form="pdf")
            return await self._detail(request, access, invoice_id, failure.errors, failure.status)
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
        features_on(access, service.enabled)
        data = await read_form(request)
        intent = intents.read_intent(data)
        try:
            if intent is None:
                await service.reference(access.customer, invoice_id)  # 404 before 422
                return await self._detail(request, access, invoice_id, {"pay": expired()})
            number, result = await service.pay(
                gateway_of(request),
                who(request, access),
                access.customer,
                invoice_id,
                key=intents.idempotency_key(access.customer.id, "invoice.pay", intent),
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except GatewayError as error:
            failure = gateway_failure(error, form="pay", intent=intent)
            return await self._detail(request, access, invoice_id, *failure)
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
        errors: dict[str, str] | None = None,
        status: int | None = None,
        new_intent: Issuer | None = None,
    ) -> Response:
        try:
            detail = await service.invoice(access.customer, invoice_id)
        except service.NotFound as missing:
            raise NotFoundException() from missing
        return await render(
            request,
            access,
            "portal/invoices/detail.html",
            nav="invoices",
            status=status,
            invoice=detail,
            errors=errors or {},
            new_intent=new_intent or Issuer(),
            can_add_payment_method=features(access).payment_method_update.enabled,
            tax_id_label=tax_ids.label,
        )
