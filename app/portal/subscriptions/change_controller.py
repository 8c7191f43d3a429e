"""Changing plans: choose (plan, quantity, promotion code) → preview (what changes, what is due)
→ confirm. The choice form carries the flow's intent and the preview hands it on to the
confirmation (so a choice shown again after billing did not answer keeps it); 404 when changing
plans is off."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide

from app.billing.gateway import GatewayError
from app.configuration.features import Features, SubscriptionUpdate
from app.portal.intents import Issuer, read_intent
from app.portal.responses import gateway_failure
from app.portal.subscriptions import eligibility, messages, plans, writes
from app.portal.subscriptions.flow import Errors, Flow, blocked, page, url
from app.portal.subscriptions.forms import ChangeForm
from app.web.forms import parse, read_form
from app.web.htmx import see_other

# The gateway's field names → the form's.
FIELDS = {
    "price": "price",
    "price_id": "price",
    "quantity": "quantity",
    "promotion_code": "promotion_code",
}


class Change(Flow):
    """One subscription's plan change (a dependency of every handler here): the configuration's
    rules and the options."""

    template = "change.html"

    update: SubscriptionUpdate
    options: list[plans.ChangeOption]

    @staticmethod
    def enabled(features: Features) -> bool:
        return features.subscription_update.enabled

    async def prepare(self) -> None:
        self.update = self.features.subscription_update
        self.options = []
        code = eligibility.update_blocker(self.sub)
        if code is None:
            catalogue = await plans.catalogue(self.update)
            self.options = plans.build_options(self.update, self.sub, catalogue)
            if not plans.has_choice(self.update, self.options):
                code = "no_options"
        self.blocker = code

    def check(self, data: dict[str, str]) -> tuple[plans.ChangeRequest | None, Errors]:
        if self.blocker:
            return None, blocked(self.blocker)
        form, errors = parse(ChangeForm, data)
        change = plans.validate_change(self.update, self.sub, self.options, form, errors)
        return change, errors

    def context(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "show_quantity": any(option.adjustable for option in self.options),
            "quantity_hint": plans.quantity_hint(self.options),
            "show_promotion_code": "promotion_code" in self.update.default_allowed_updates,
        }


class ChangeController(Controller):
    dependencies = {"change": Provide(Change.of)}

    @get("/{subscription_id:str}/change", name="portal:subscription_change_form")
    async def change_form(self, request: Request, change: NamedDependency[Change]) -> Response:
        query = request.query_params
        current = change.sub.items[0] if len(change.sub.items) == 1 else None
        values = {
            "price": query.get("price") or (current.price_id if current else ""),
            "quantity": query.get("quantity") or (str(current.quantity) if current else ""),
            "promotion_code": query.get("promotion_code", ""),
        }
        return await change.page({k: v[:64] for k, v in values.items()})

    @get("/{subscription_id:str}/preview", name="portal:subscription_preview_get")
    async def preview_get(self, request: Request, change: NamedDependency[Change]) -> Response:
        """The preview is a POST; loaded from the address bar it goes back to the choice."""
        return see_other(request, url(change.sub.id, "change"))

    @post("/{subscription_id:str}/preview", name="portal:subscription_preview", status_code=200)
    async def preview(self, request: Request, change: NamedDependency[Change]) -> Response:
        data = await read_form(request)
        chosen, errors = change.check(data)
        if chosen is None:
            return await change.page(data, errors, status=422)
        intent = read_intent(data)
        try:
            preview = await plans.preview_change(change.gateway, change.sub, chosen)
        except GatewayError as error:
            return await change.page(
                data, *gateway_failure(error, form="form", intent=intent, fields=FIELDS)
            )
        return await page(
            request,
            change.access,
            "preview.html",
            sub=change.sub,
            option=next(o for o in change.options if o.price_id == chosen.price_id),
            change=chosen,
            preview=preview,
            new_intent=Issuer({"form": intent}) if intent else Issuer(),
        )

    @post("/{subscription_id:str}/change", name="portal:subscription_change", status_code=200)
    async def change(self, change: NamedDependency[Change]) -> Response:
        tz = change.access.customer.time_zone
        return await change.submit(
            messages.CHANGED,
            writes.change_plan,
            fields=FIELDS,
            message=lambda fresh, chosen: messages.change_message(
                fresh, tz, scheduled=chosen.schedule_at_period_end
            ),
        )
