"""Subscription pages: list, change plan (choose → preview → confirm), cancel (reasons → offer or
confirmation → confirm), renew, pause and resume.

Every action is a plain form (POST → 303 → page with a flash) that htmx enhances (``hx-post`` to the
same URL, ``#main-content`` swapped, success through ``done``). Invalid input re-renders the form
with its messages and 422. A switched-off feature's routes answer 404, and so does another
customer's subscription id.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from app import clock
from app.audit import service as audit
from app.billing.gateway import GatewayError, GatewayUnavailable
from app.configuration import service as configurations
from app.configuration.features import Features
from app.i18n import gettext as _
from app.portal.access import CustomerAccess, customer_access
from app.portal.controller import portal_context
from app.portal.intents import idempotency_key, new_intent, read_intent
from app.portal.responses import done
from app.portal.subscriptions import service
from app.portal.subscriptions.forms import COMMENT_MAX, CancelForm, ChangeForm, PauseForm
from app.portal.subscriptions.service import SubscriptionDetail
from app.web.forms import parse, read_form
from app.web.htmx import VARY, page, see_other, wants_fragment
from app.web.security import client_ip
from app.web.state import gateway_of

LIST_URL = "/portal/subscriptions"
TEMPLATES = "portal/subscriptions/"
# htmx swaps these into #main-content; any other error status replaces the whole <body>
# (see the htmx-config in base.html), so those get the whole page.
FRAGMENT_STATUSES = (200, 422, 429)


def _url(subscription_id: str, step: str = "") -> str:
    return f"{LIST_URL}/{subscription_id}" + (f"/{step}" if step else "")


def _features(access: CustomerAccess) -> Features:
    return configurations.features(access.configuration)


def _require(enabled: bool) -> None:
    if not enabled:
        raise NotFoundException()


async def _subscription(access: CustomerAccess, subscription_id: str) -> SubscriptionDetail:
    sub = await service.find(access.customer.id, subscription_id)
    if sub is None:
        raise NotFoundException()
    return sub


def _who(request: Request, access: CustomerAccess) -> service.Who:
    return service.Who(
        actor=audit.Actor(
            type="customer",
            id=access.customer.id,
            email=access.customer.email or "",
            ip=client_ip(request.scope),
            user_agent=request.headers.get("user-agent", ""),
        ),
        configuration=access.configuration.id,
    )


def _expired() -> dict[str, str]:
    return {"form": _("This form has expired, reload the page and try again.")}


# The gateway's names for fields whose form names differ.
FIELD_ALIASES = {"resumes_at": "resume_on", "price_id": "price"}


def _gateway_failure(exc: GatewayError, fields: tuple[str, ...]) -> tuple[dict[str, str], int]:
    """The gateway's message beside its field (or atop the form), with 422, or 502 when billing
    did not answer."""
    field = FIELD_ALIASES.get(exc.field or "", exc.field)
    key = field if field in fields else "form"
    return {key: exc.message}, 502 if isinstance(exc, GatewayUnavailable) else 422


async def _render(
    request: Request,
    access: CustomerAccess,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    fragment = wants_fragment(request) and status in FRAGMENT_STATUSES
    full = {
        **await portal_context(access),
        "nav": "subscriptions",
        "as_fragment": fragment,
        "errors": {},
        "discount_terms": service.discount_terms,
        **context,
    }
    if wants_fragment(request) and not fragment:
        return Template(
            template_name=TEMPLATES + template, context=full, status_code=status, headers=VARY
        )
    return page(request, TEMPLATES + template, fragment="main_content", context=full, status=status)


class SubscriptionsController(Controller):
    path = LIST_URL
    dependencies = {"access": Provide(customer_access)}

    # -- list -----------------------------------------------------------------------------------
    @get("/", name="portal:subscriptions")
    async def index(self, request: Request, access: NamedDependency[CustomerAccess]) -> Response:
        return await self._list(request, access)

    async def _list(
        self,
        request: Request,
        access: CustomerAccess,
        *,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        features = _features(access)
        update = features.subscription_update
        subs = await service.list_subscriptions(access.customer.id)
        catalogue = await service.catalogue(update) if update.enabled else []
        now = clock.now()
        rows = []
        for sub in subs:
            options = service.build_options(update, sub, catalogue) if update.enabled else []
            rows.append(
                {
                    "sub": sub,
                    "actions": service.actions(features, sub, options, now),
                    "intent": new_intent(),
                }
            )
        return await _render(
            request, access, "list.html", status=status, rows=rows, errors=errors or {}
        )

    # -- change plan ----------------------------------------------------------------------------
    async def _change_setup(
        self, access: CustomerAccess, subscription_id: str
    ) -> tuple[Features, SubscriptionDetail, list[service.ChangeOption], str | None]:
        features = _features(access)
        update = features.subscription_update
        _require(update.enabled)
        sub = await _subscription(access, subscription_id)
        blocked = service.update_blocker(sub)
        options: list[service.ChangeOption] = []
        if blocked is None:
            options = service.build_options(update, sub, await service.catalogue(update))
            if not service.has_choice(update, options):
                blocked = "no_options"
        return features, sub, options, blocked

    async def _change_page(
        self,
        request: Request,
        access: CustomerAccess,
        features: Features,
        sub: SubscriptionDetail,
        options: list[service.ChangeOption],
        blocked: str | None,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        if blocked and request.method == "POST" and not errors:
            errors, status = {"form": service.blocker_message(blocked)}, 422
        update = features.subscription_update
        return await _render(
            request,
            access,
            "change.html",
            status=status,
            sub=sub,
            options=options,
            blocked=service.blocker_message(blocked) if blocked else None,
            show_quantity=any(option.adjustable for option in options),
            quantity_hint=service.quantity_hint(options),
            show_promotion_code="promotion_code" in update.default_allowed_updates,
            values=values,
            errors=errors or {},
        )

    @get("/{subscription_id:str}/change", name="portal:subscription_change_form")
    async def change_form(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, sub, options, blocked = await self._change_setup(access, subscription_id)
        query = request.query_params
        current = sub.items[0] if len(sub.items) == 1 else None
        values = {
            "price": query.get("price") or (current.price_id if current else ""),
            "quantity": query.get("quantity") or (str(current.quantity) if current else ""),
            "promotion_code": query.get("promotion_code", ""),
        }
        return await self._change_page(
            request, access, features, sub, options, blocked, {k: v[:64] for k, v in values.items()}
        )

    @get("/{subscription_id:str}/preview", name="portal:subscription_preview_get")
    async def preview_get(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        """The preview is a POST; loaded from the address bar it goes back to the choice."""
        await self._change_setup(access, subscription_id)
        return see_other(request, _url(subscription_id, "change"))

    @post("/{subscription_id:str}/preview", name="portal:subscription_preview", status_code=200)
    async def preview(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, sub, options, blocked = await self._change_setup(access, subscription_id)
        data = await read_form(request)
        if blocked:
            return await self._change_page(
                request, access, features, sub, options, blocked, data, status=422
            )
        form, errors = parse(ChangeForm, data)
        change = service.validate_change(features.subscription_update, sub, options, form, errors)
        if change is None:
            return await self._change_page(
                request, access, features, sub, options, None, data, errors, status=422
            )
        try:
            preview = await service.preview_change(gateway_of(request), sub, change)
        except GatewayError as exc:
            errors, status = _gateway_failure(exc, ("price", "quantity", "promotion_code"))
            return await self._change_page(
                request, access, features, sub, options, None, data, errors, status=status
            )
        option = next(o for o in options if o.price_id == change.price_id)
        return await _render(
            request,
            access,
            "preview.html",
            sub=sub,
            option=option,
            change=change,
            preview=preview,
            intent=new_intent(),
        )

    @post("/{subscription_id:str}/change", name="portal:subscription_change", status_code=200)
    async def change(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, sub, options, blocked = await self._change_setup(access, subscription_id)
        data = await read_form(request)
        intent = read_intent(data)
        if intent is None:
            return await self._change_page(
                request, access, features, sub, options, blocked, data, _expired(), status=422
            )
        key = idempotency_key(access.customer.id, service.CHANGED, intent)
        if await service.replayed(access.customer.id, service.CHANGED, sub.id, key):
            return await self._done(request, access, service.CHANGED, sub)
        if blocked:
            return await self._change_page(
                request, access, features, sub, options, blocked, data, status=422
            )
        form, errors = parse(ChangeForm, data)
        change = service.validate_change(features.subscription_update, sub, options, form, errors)
        if change is None:
            return await self._change_page(
                request, access, features, sub, options, None, data, errors, status=422
            )
        try:
            fresh = await service.change_plan(
                gateway_of(request), _who(request, access), sub, change, key
            )
        except GatewayError as exc:
            errors, status = _gateway_failure(exc, ("price", "quantity", "promotion_code"))
            return await self._change_page(
                request, access, features, sub, options, None, data, errors, status=status
            )
        message = service.change_message(
            fresh, access.customer.time_zone, scheduled=change.schedule_at_period_end
        )
        return await done(request, access, LIST_URL, message)

    # -- cancel ---------------------------------------------------------------------------------
    async def _cancel_setup(
        self, access: CustomerAccess, subscription_id: str
    ) -> tuple[Features, SubscriptionDetail]:
        features = _features(access)
        _require(features.subscription_cancel.enabled)
        return features, await _subscription(access, subscription_id)

    async def _cancel_page(
        self,
        request: Request,
        access: CustomerAccess,
        features: Features,
        sub: SubscriptionDetail,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        blocked = service.cancel_blocker(sub)
        if blocked and request.method == "POST" and not errors:
            errors, status = {"form": service.blocker_message(blocked)}, 422
        return await _render(
            request,
            access,
            "cancel.html",
            status=status,
            sub=sub,
            blocked=service.blocker_message(blocked) if blocked else None,
            at_period_end=features.subscription_cancel.mode == "at_period_end",
            reasons=service.cancel_reasons(features),
            comment_max=COMMENT_MAX,
            values=values,
            errors=errors or {},
        )

    async def _review_page(
        self,
        request: Request,
        access: CustomerAccess,
        features: Features,
        sub: SubscriptionDetail,
        cancel: service.CancelRequest,
        offer: service.Offer | None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        return await _render(
            request,
            access,
            "review.html",
            status=status,
            sub=sub,
            cancel=cancel,
            reason_label=dict(service.cancel_reasons(features)).get(cancel.reason or ""),
            offer=offer,
            intent=new_intent(),
            errors=errors or {},
        )

    @get("/{subscription_id:str}/cancel", name="portal:subscription_cancel_form")
    async def cancel_form(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, sub = await self._cancel_setup(access, subscription_id)
        return await self._cancel_page(request, access, features, sub, {})

    @get("/{subscription_id:str}/cancel/review", name="portal:subscription_cancel_review_get")
    async def cancel_review_get(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        await self._cancel_setup(access, subscription_id)
        return see_other(request, _url(subscription_id, "cancel"))

    @post(
        "/{subscription_id:str}/cancel/review",
        name="portal:subscription_cancel_review",
        status_code=200,
    )
    async def cancel_review(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, sub = await self._cancel_setup(access, subscription_id)
        data = await read_form(request)
        if service.cancel_blocker(sub):
            return await self._cancel_page(request, access, features, sub, data, status=422)
        form, errors = parse(CancelForm, data)
        cancel = service.validate_cancel(features, form, errors)
        if cancel is None:
            return await self._cancel_page(request, access, features, sub, data, errors, status=422)
        offer = await service.offer_to_show(features, sub)
        if offer is not None:
            await service.offer_shown(_who(request, access), sub, offer)
        return await self._review_page(request, access, features, sub, cancel, offer)

    @post("/{subscription_id:str}/cancel", name="portal:subscription_cancel", status_code=200)
    async def cancel(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, sub = await self._cancel_setup(access, subscription_id)
        data = await read_form(request)
        intent = read_intent(data)
        if intent is None:
            return await self._cancel_page(
                request, access, features, sub, data, _expired(), status=422
            )
        key = idempotency_key(access.customer.id, service.CANCELED, intent)
        if await service.replayed(access.customer.id, service.CANCELED, sub.id, key):
            return await self._done(request, access, service.CANCELED, sub)
        if service.cancel_blocker(sub):
            return await self._cancel_page(request, access, features, sub, data, status=422)
        form, errors = parse(CancelForm, data)
        cancel = service.validate_cancel(features, form, errors)
        if cancel is None:
            return await self._cancel_page(request, access, features, sub, data, errors, status=422)
        try:
            fresh = await service.cancel(
                gateway_of(request), _who(request, access), sub, cancel, key
            )
        except GatewayError as exc:
            errors, status = _gateway_failure(exc, ("reason", "comment"))
            if "form" not in errors:  # about the survey's answers: back to the survey
                return await self._cancel_page(
                    request, access, features, sub, data, errors, status=status
                )
            return await self._review_page(
                request, access, features, sub, cancel, None, errors, status=status
            )
        return await done(
            request, access, LIST_URL, service.cancel_message(fresh, access.customer.time_zone)
        )

    @get("/{subscription_id:str}/offer", name="portal:subscription_offer_get")
    async def offer_get(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, _sub = await self._cancel_setup(access, subscription_id)
        _require(bool(features.subscription_cancel.retention_coupon))
        return see_other(request, _url(subscription_id, "cancel"))

    @post("/{subscription_id:str}/offer", name="portal:subscription_offer", status_code=200)
    async def accept_offer(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        features, sub = await self._cancel_setup(access, subscription_id)
        _require(bool(features.subscription_cancel.retention_coupon))
        data = await read_form(request)
        intent = read_intent(data)
        if intent is None:
            return await self._cancel_page(
                request, access, features, sub, data, _expired(), status=422
            )
        key = idempotency_key(access.customer.id, service.OFFER_ACCEPTED, intent)
        if await service.replayed(access.customer.id, service.OFFER_ACCEPTED, sub.id, key):
            return await self._done(request, access, service.OFFER_ACCEPTED, sub)
        offer = await service.available_offer(features, sub)
        if offer is None:
            errors = {"form": service.blocker_message("no_offer")}
            return await self._cancel_page(request, access, features, sub, data, errors, 422)
        try:
            fresh = await service.accept_offer(
                gateway_of(request), _who(request, access), sub, offer, key
            )
        except GatewayError as exc:
            errors, status = _gateway_failure(exc, ())
            form, _errors = parse(CancelForm, data)
            cancel = service.validate_cancel(features, form, {}) or service.cancel_request(features)
            return await self._review_page(
                request, access, features, sub, cancel, offer, errors, status=status
            )
        return await done(
            request, access, LIST_URL, service.offer_message(fresh, access.customer.time_zone)
        )

    # -- renew ----------------------------------------------------------------------------------
    @get("/{subscription_id:str}/renew", name="portal:subscription_renew_get")
    async def renew_get(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        await _subscription(access, subscription_id)
        return see_other(request, LIST_URL)

    @post("/{subscription_id:str}/renew", name="portal:subscription_renew", status_code=200)
    async def renew(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        sub = await _subscription(access, subscription_id)
        return await self._list_action(
            request,
            access,
            sub,
            service.RENEWED,
            service.renew_blocker(sub, clock.now()),
            lambda key: service.renew(gateway_of(request), _who(request, access), sub, key),
        )

    # -- pause and resume -------------------------------------------------------------------------
    async def _pause_setup(
        self, access: CustomerAccess, subscription_id: str
    ) -> SubscriptionDetail:
        _require(_features(access).subscription_pause.enabled)
        return await _subscription(access, subscription_id)

    async def _pause_page(
        self,
        request: Request,
        access: CustomerAccess,
        sub: SubscriptionDetail,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        blocked = service.pause_blocker(sub)
        if blocked and request.method == "POST" and not errors:
            errors, status = {"form": service.blocker_message(blocked)}, 422
        first, last = service.pause_window(clock.now(), access.customer.time_zone)
        return await _render(
            request,
            access,
            "pause.html",
            status=status,
            sub=sub,
            blocked=service.blocker_message(blocked) if blocked else None,
            first_day=first.isoformat(),
            last_day=last.isoformat(),
            months=service.PAUSE_MONTHS,
            values=values,
            errors=errors or {},
            intent=new_intent(),
        )

    @get("/{subscription_id:str}/pause", name="portal:subscription_pause_form")
    async def pause_form(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        sub = await self._pause_setup(access, subscription_id)
        return await self._pause_page(request, access, sub, {})

    @post("/{subscription_id:str}/pause", name="portal:subscription_pause", status_code=200)
    async def pause(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        sub = await self._pause_setup(access, subscription_id)
        data = await read_form(request)
        intent = read_intent(data)
        if intent is None:
            return await self._pause_page(request, access, sub, data, _expired(), status=422)
        key = idempotency_key(access.customer.id, service.PAUSED, intent)
        if await service.replayed(access.customer.id, service.PAUSED, sub.id, key):
            return await self._done(request, access, service.PAUSED, sub)
        if service.pause_blocker(sub):
            return await self._pause_page(request, access, sub, data, status=422)
        form, errors = parse(PauseForm, data)
        resumes_at = service.validate_pause(form, clock.now(), access.customer.time_zone, errors)
        if errors:
            return await self._pause_page(request, access, sub, data, errors, status=422)
        try:
            fresh = await service.pause(
                gateway_of(request), _who(request, access), sub, resumes_at, key
            )
        except GatewayError as exc:
            errors, status = _gateway_failure(exc, ("mode", "resume_on"))
            return await self._pause_page(request, access, sub, data, errors, status=status)
        return await done(
            request, access, LIST_URL, service.pause_message(fresh, access.customer.time_zone)
        )

    @get("/{subscription_id:str}/resume", name="portal:subscription_resume_get")
    async def resume_get(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        await self._pause_setup(access, subscription_id)
        return see_other(request, LIST_URL)

    @post("/{subscription_id:str}/resume", name="portal:subscription_resume", status_code=200)
    async def resume(
        self,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Response:
        sub = await self._pause_setup(access, subscription_id)
        return await self._list_action(
            request,
            access,
            sub,
            service.RESUMED,
            service.resume_blocker(sub),
            lambda key: service.resume(gateway_of(request), _who(request, access), sub, key),
        )

    # -- shared -----------------------------------------------------------------------------------
    async def _done(
        self, request: Request, access: CustomerAccess, action: str, sub: SubscriptionDetail
    ) -> Response:
        """The answer to a replayed form: the same page and message as the first time."""
        fresh = await service.find(access.customer.id, sub.id) or sub
        message = service.MESSAGES[action](fresh, access.customer.time_zone)
        return await done(request, access, LIST_URL, message)

    async def _list_action(
        self,
        request: Request,
        access: CustomerAccess,
        sub: SubscriptionDetail,
        action: str,
        blocked: str | None,
        perform: Any,
    ) -> Response:
        """A one-button action on the list (renew, resume): problems show on the list, beside
        the subscription."""
        anchor = f"sub-{sub.id}"
        data = await read_form(request)
        intent = read_intent(data)
        if intent is None:
            return await self._list(
                request, access, errors={anchor: _expired()["form"]}, status=422
            )
        key = idempotency_key(access.customer.id, action, intent)
        if await service.replayed(access.customer.id, action, sub.id, key):
            return await self._done(request, access, action, sub)
        if blocked:
            errors = {anchor: service.blocker_message(blocked)}
            return await self._list(request, access, errors=errors, status=422)
        try:
            fresh = await perform(key)
        except GatewayError as exc:
            status = 502 if isinstance(exc, GatewayUnavailable) else 422
            return await self._list(request, access, errors={anchor: exc.message}, status=status)
        message = service.MESSAGES[action](fresh, access.customer.time_zone)
        return await done(request, access, LIST_URL, message)
