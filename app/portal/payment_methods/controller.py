"""Payment methods pages: list, add a card, make default, remove (with a confirmation page).

Thin: parse the form, call ``service``, answer with ``done()`` (flash + 303 / HX-Location) or
re-render the page with messages and 422. Every card is looked up through the signed-in customer.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from app.audit import service as audit
from app.billing.gateway import GatewayError
from app.configuration import service as configurations
from app.i18n import gettext as _
from app.portal import intents
from app.portal.access import CustomerAccess, customer_access
from app.portal.controller import portal_context
from app.portal.payment_methods import service
from app.portal.payment_methods.forms import ECHOED_FIELDS, CardForm
from app.portal.responses import done
from app.web.forms import parse, read_form
from app.web.htmx import page, see_other
from app.web.security import client_ip
from app.web.state import gateway_of, settings_of

LIST_URL = "/portal/payment-methods"
NEW_URL = "/portal/payment-methods/new"
# The gateway's ``error.field`` → the form field the message goes beside.
GATEWAY_FIELDS = {
    "number": "number",
    "exp_month": "expiry",
    "exp_year": "expiry",
    "expiry": "expiry",
    "cvc": "cvc",
    "name": "name",
}


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


def _label(card: service.CardRow) -> str:
    brands = {
        "visa": "Visa",
        "mastercard": "Mastercard",
        "amex": "American Express",
        "discover": "Discover",
        "jcb": "JCB",
        "diners": "Diners Club",
        "unionpay": "UnionPay",
    }
    brand = brands.get(card.brand or "", (card.brand or _("Card")).capitalize())
    return _("%(brand)s ending in %(last4)s") % {"brand": brand, "last4": card.last4 or "????"}


async def _context(access: CustomerAccess, **extra: Any) -> dict[str, Any]:
    return {
        **await portal_context(access),
        "nav": "payment_methods",
        "new_intent": intents.new_intent,
        "errors": {},
        **extra,
    }


class PaymentMethodsController(Controller):
    path = LIST_URL
    dependencies = {"access": Provide(customer_access)}

    # -- pages ------------------------------------------------------------------------------------
    @get("/", name="payment_methods:list")
    async def list_page(
        self, request: Request, access: NamedDependency[CustomerAccess]
    ) -> Response:
        _require_feature(access)
        return await self._list(request, access)

    @get("/new", name="payment_methods:new")
    async def new(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        """Adding begins with the gateway: Stripe answers with its hosted page (we redirect), the
        sandbox with nothing (we show Portico's own card form)."""
        _require_feature(access)
        base = settings_of(request).base_url.rstrip("/")
        key = intents.idempotency_key(
            access.customer.id, "payment_method.start", intents.new_intent()
        )
        try:
            start = await service.start_add(
                gateway_of(request),
                access.customer,
                success_url=f"{base}{LIST_URL}/complete?session_id={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{base}{LIST_URL}",
                key=key,
            )
        except GatewayError as error:
            return await self._list(request, access, errors={"add-payment-method": error.message})
        if start.redirect_url:
            return see_other(request, start.redirect_url)
        return await self._new_form(request, access, values={"make_default": "1"})

    @get("/complete", name="payment_methods:complete")
    async def complete(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        session_id: FromQuery[str] = "",
    ) -> Response:
        """Back from the provider's hosted page (Stripe mode)."""
        _require_feature(access)
        if not session_id or len(session_id) > 255:
            raise NotFoundException()
        try:
            await service.complete_add(
                gateway_of(request),
                access.customer,
                session_id=session_id,
                make_default=True,
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except GatewayError as error:
            return await self._list(request, access, errors={"add-payment-method": error.message})
        return await done(request, access, LIST_URL, _("Your payment method was added."))

    # -- actions ----------------------------------------------------------------------------------
    @post("/", name="payment_methods:add")
    async def add(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        _require_feature(access)
        data = await read_form(request)
        # Only these are ever written back into the form: never the card number or CVC.
        echoed = {name: data.get(name, "") for name in ECHOED_FIELDS}
        intent = intents.read_intent(data)
        form, errors = parse(CardForm, data)
        if intent is None:
            errors = {"number": _("This form has expired. Enter the card details again.")}
        if errors:
            return await self._new_form(request, access, values=echoed, errors=errors)
        try:
            await service.add_card(
                gateway_of(request),
                access.customer,
                form.card(),
                make_default=form.wants_default,
                key=intents.idempotency_key(access.customer.id, "payment_method.add", intent),
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except GatewayError as error:
            field = GATEWAY_FIELDS.get(error.field or "", "number")
            return await self._new_form(
                request, access, values=echoed, errors={field: error.message}
            )
        return await done(request, access, LIST_URL, _("Your card was added."))

    @post("/{payment_method_id:str}/default", name="payment_methods:make_default")
    async def make_default(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        payment_method_id: FromPath[str],
    ) -> Response:
        _require_feature(access)
        data = await read_form(request)
        intent = intents.read_intent(data)
        anchor = f"card-{payment_method_id}"
        try:
            if intent is None:
                await service.card(access.customer, payment_method_id)  # 404 before 422
                return await self._list(
                    request, access, errors={anchor: _("This form has expired. Try again.")}
                )
            chosen = await service.make_default(
                gateway_of(request),
                access.customer,
                payment_method_id,
                key=intents.idempotency_key(access.customer.id, "payment_method.default", intent),
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except GatewayError as error:
            return await self._list(request, access, errors={anchor: error.message})
        return await done(
            request,
            access,
            LIST_URL,
            _("%(card)s is now your default payment method.") % {"card": _label(chosen)},
        )

    @get("/{payment_method_id:str}/remove", name="payment_methods:confirm_remove")
    async def confirm_remove(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        payment_method_id: FromPath[str],
    ) -> Response:
        _require_feature(access)
        return await self._confirm_page(request, access, payment_method_id)

    @post("/{payment_method_id:str}/remove", name="payment_methods:remove")
    async def remove(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        payment_method_id: FromPath[str],
    ) -> Response:
        _require_feature(access)
        data = await read_form(request)
        intent = intents.read_intent(data)
        if intent is None:
            return await self._confirm_page(
                request,
                access,
                payment_method_id,
                errors={"remove-title": _("This form has expired. Try again.")},
            )
        try:
            removed = await service.remove(
                gateway_of(request),
                access.customer,
                payment_method_id,
                key=intents.idempotency_key(access.customer.id, "payment_method.remove", intent),
                actor=_actor(request, access),
                configuration=access.configuration.id,
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except service.LastPaymentMethod:
            return await self._confirm_page(
                request,
                access,
                payment_method_id,
                errors={"remove-title": service.last_method_reason()},
            )
        except GatewayError as error:
            return await self._confirm_page(
                request, access, payment_method_id, errors={"remove-title": error.message}
            )
        return await done(
            request, access, LIST_URL, _("%(card)s was removed.") % {"card": _label(removed)}
        )

    # -- rendering --------------------------------------------------------------------------------
    async def _list(
        self,
        request: Request,
        access: CustomerAccess,
        *,
        errors: dict[str, str] | None = None,
    ) -> Response:
        view = await service.payment_methods(access.customer)
        return page(
            request,
            "portal/payment_methods/list.html",
            fragment="main_content",
            status=422 if errors else 200,
            context=await _context(access, view=view, errors=errors or {}),
        )

    async def _new_form(
        self,
        request: Request,
        access: CustomerAccess,
        *,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
    ) -> Response:
        return page(
            request,
            "portal/payment_methods/new.html",
            fragment="main_content",
            status=422 if errors else 200,
            context=await _context(access, values=values, errors=errors or {}),
        )

    async def _confirm_page(
        self,
        request: Request,
        access: CustomerAccess,
        payment_method_id: str,
        *,
        errors: dict[str, str] | None = None,
    ) -> Response:
        try:
            check = await service.removal(access.customer, payment_method_id)
        except service.NotFound as missing:
            raise NotFoundException() from missing
        return page(
            request,
            "portal/payment_methods/remove.html",
            fragment="main_content",
            status=422 if errors else 200,
            context=await _context(
                access,
                removal=check,
                reason=None if check.allowed else service.last_method_reason(),
                errors=errors or {},
            ),
        )
