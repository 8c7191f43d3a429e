"""Payment methods pages: list, add a card, make default, remove (with a confirmation page).

Thin: parse the form, call ``service``, answer with ``done()`` (flash + 303 / HX-Location) or
re-render the page with messages and 422 (502 when billing did not answer). Every card is looked
up through the signed-in customer.
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from app.billing.gateway import GatewayError
from app.i18n import gettext as _
from app.portal import intents
from app.portal.access import CustomerAccess, customer_access, features_on, require, who
from app.portal.intents import Issuer
from app.portal.payment_methods import service
from app.portal.payment_methods.forms import ECHOED_FIELDS, CardForm
from app.portal.responses import done, expired, gateway_failure, render
from app.web.forms import parse, read_form
from app.web.htmx import see_other
from app.web.state import gateway_of, settings_of

LIST_URL = "/portal/payment-methods"
NEW_URL = "/portal/payment-methods/new"
TEMPLATES = "portal/payment_methods/"
# The gateway's ``error.field`` → the form field the message goes beside.
GATEWAY_FIELDS = {
    "number": "number",
    "exp_month": "expiry",
    "exp_year": "expiry",
    "expiry": "expiry",
    "cvc": "cvc",
    "name": "name",
}


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


async def _page(
    request: Request, access: CustomerAccess, template: str, *, status: int | None = None, **values
) -> Response:
    return await render(
        request, access, TEMPLATES + template, nav="payment_methods", status=status, **values
    )


class PaymentMethodsController(Controller):
    path = LIST_URL
    dependencies = {"access": Provide(customer_access)}

    # -- pages ------------------------------------------------------------------------------------
    @get("/", name="payment_methods:list")
    async def list_page(
        self, request: Request, access: NamedDependency[CustomerAccess]
    ) -> Response:
        features_on(access, service.enabled)
        return await self._list(request, access)

    @get("/new", name="payment_methods:new")
    async def new(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        """Adding begins with the gateway: Stripe answers with its hosted page (we redirect), the
        sandbox with nothing (we show Portico's own card form)."""
        features_on(access, service.enabled)
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
            failure = gateway_failure(error, form="add-payment-method")
            return await self._list(request, access, failure.errors, failure.status)
        if start.redirect_url:
            return see_other(request, start.redirect_url)
        return await _page(request, access, "new.html", values={"make_default": "1"})

    @get("/complete", name="payment_methods:complete")
    async def complete(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        session_id: FromQuery[str] = "",
    ) -> Response:
        """Back from the provider's hosted page (Stripe mode)."""
        features_on(access, service.enabled)
        require(session_id and len(session_id) <= 255)
        try:
            await service.complete_add(
                gateway_of(request),
                who(request, access),
                access.customer,
                session_id=session_id,
                make_default=True,
                key=intents.idempotency_key(
                    access.customer.id, "payment_method.complete", session_id
                ),
            )
        except GatewayError as error:
            failure = gateway_failure(error, form="add-payment-method")
            return await self._list(request, access, failure.errors, failure.status)
        return await done(request, access, LIST_URL, _("Your payment method was added."))

    # -- actions ----------------------------------------------------------------------------------
    @post("/", name="payment_methods:add")
    async def add(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        features_on(access, service.enabled)
        data = await read_form(request)
        # Only these are ever written back into the form: never the card number or CVC.
        echoed = {name: data.get(name, "") for name in ECHOED_FIELDS}
        intent = intents.read_intent(data)
        form, errors = parse(CardForm, data)
        if intent is None:
            errors = {"number": _("This form has expired. Enter the card details again.")}
        if errors:
            return await _page(request, access, "new.html", values=echoed, errors=errors)
        try:
            await service.add_card(
                gateway_of(request),
                who(request, access),
                access.customer,
                form.card(),
                make_default=form.wants_default,
                key=intents.idempotency_key(access.customer.id, "payment_method.add", intent),
            )
        except GatewayError as error:
            failure = gateway_failure(error, form="number", intent=intent, fields=GATEWAY_FIELDS)
            return await _page(
                request,
                access,
                "new.html",
                values=echoed,
                errors=failure.errors,
                status=failure.status,
                new_intent=failure.new_intent,
            )
        return await done(request, access, LIST_URL, _("Your card was added."))

    @post("/{payment_method_id:str}/default", name="payment_methods:make_default")
    async def make_default(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        payment_method_id: FromPath[str],
    ) -> Response:
        features_on(access, service.enabled)
        data = await read_form(request)
        intent = intents.read_intent(data)
        anchor = f"card-{payment_method_id}"
        try:
            if intent is None:
                await service.card(access.customer, payment_method_id)  # 404 before 422
                return await self._list(request, access, {anchor: expired()})
            chosen = await service.make_default(
                gateway_of(request),
                who(request, access),
                access.customer,
                payment_method_id,
                key=intents.idempotency_key(access.customer.id, "payment_method.default", intent),
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except GatewayError as error:
            return await self._list(
                request, access, *gateway_failure(error, form=anchor, intent=intent)
            )
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
        features_on(access, service.enabled)
        return await self._confirm_page(request, access, payment_method_id)

    @post("/{payment_method_id:str}/remove", name="payment_methods:remove")
    async def remove(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        payment_method_id: FromPath[str],
    ) -> Response:
        features_on(access, service.enabled)
        data = await read_form(request)
        intent = intents.read_intent(data)
        form = "remove-title"
        if intent is None:
            return await self._confirm_page(request, access, payment_method_id, {form: expired()})
        try:
            removed = await service.remove(
                gateway_of(request),
                who(request, access),
                access.customer,
                payment_method_id,
                key=intents.idempotency_key(access.customer.id, "payment_method.remove", intent),
            )
        except service.NotFound as missing:
            raise NotFoundException() from missing
        except service.LastPaymentMethod:
            return await self._confirm_page(
                request, access, payment_method_id, {form: service.last_method_reason()}
            )
        except GatewayError as error:
            return await self._confirm_page(
                request,
                access,
                payment_method_id,
                *gateway_failure(error, form=form, intent=intent),
            )
        return await done(
            request, access, LIST_URL, _("%(card)s was removed.") % {"card": _label(removed)}
        )

    # -- rendering --------------------------------------------------------------------------------
    async def _list(
        self,
        request: Request,
        access: CustomerAccess,
        errors: dict[str, str] | None = None,
        status: int | None = None,
        new_intent: Issuer | None = None,
    ) -> Response:
        return await _page(
            request,
            access,
            "list.html",
            status=status,
            view=await service.payment_methods(access.customer),
            errors=errors or {},
            new_intent=new_intent or Issuer(),
        )

    async def _confirm_page(
        self,
        request: Request,
        access: CustomerAccess,
        payment_method_id: str,
        errors: dict[str, str] | None = None,
        status: int | None = None,
        new_intent: Issuer | None = None,
    ) -> Response:
        try:
            check = await service.removal(access.customer, payment_method_id)
        except service.NotFound as missing:
            raise NotFoundException() from missing
        return await _page(
            request,
            access,
            "remove.html",
            status=status,
            removal=check,
            reason=None if check.allowed else service.last_method_reason(),
            errors=errors or {},
            new_intent=new_intent or Issuer(),
        )
