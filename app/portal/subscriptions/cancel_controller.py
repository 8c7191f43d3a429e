"""Cancelling: the survey (reasons, comment) → the retention offer or the confirmation → cancel
(or accept the offer). 404 when cancelling is off (and for the offer, without a retention
coupon)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide

from app.configuration.features import Features
from app.portal.access import require, who
from app.portal.intents import Issuer
from app.portal.subscriptions import cancellation, eligibility, messages, writes
from app.portal.subscriptions.cancellation import CancelRequest, Offer
from app.portal.subscriptions.flow import Errors, Flow, blocked, page, url
from app.portal.subscriptions.forms import COMMENT_MAX, CancelForm
from app.web.forms import parse, read_form
from app.web.htmx import see_other

# The survey's fields, where the gateway's messages about them go.
FIELDS = {"reason": "reason", "comment": "comment"}


class Cancel(Flow):
    """One subscription's cancellation under the configuration's rules (a dependency of every
    handler here). Its form is the survey; the review page (``review``) carries the intents."""

    template = "cancel.html"

    @staticmethod
    def enabled(features: Features) -> bool:
        return features.subscription_cancel.enabled

    async def prepare(self) -> None:
        self.blocker = eligibility.cancel_blocker(self.sub)

    def check(self, data: dict[str, str]) -> tuple[CancelRequest | None, Errors]:
        if self.blocker:
            return None, blocked(self.blocker)
        form, errors = parse(CancelForm, data)
        return cancellation.validate_cancel(self.features, form, errors), errors

    def answers(self, data: dict[str, str]) -> CancelRequest:
        """The survey's answers carried by the review page's forms (ignored when invalid)."""
        form, _errors = parse(CancelForm, data)
        return cancellation.validate_cancel(self.features, form, {}) or cancellation.cancel_request(
            self.features
        )

    def context(self) -> dict[str, Any]:
        return {
            "at_period_end": self.features.subscription_cancel.mode == "at_period_end",
            "reasons": cancellation.cancel_reasons(self.features),
            "comment_max": COMMENT_MAX,
        }

    async def review(
        self,
        answers: CancelRequest,
        offer: Offer | None,
        errors: Errors | None = None,
        status: int = 200,
        new_intent: Issuer | None = None,
    ) -> Response:
        reason = dict(cancellation.cancel_reasons(self.features)).get(answers.reason or "")
        return await page(
            self.request,
            self.access,
            "review.html",
            status=status,
            sub=self.sub,
            cancel=answers,
            reason_label=reason,
            offer=offer,
            errors=errors or {},
            new_intent=new_intent or Issuer(),
        )

    async def failed(
        self, data: dict[str, str], errors: Errors, status: int, new_intent: Issuer
    ) -> Response:
        """After the gateway refused: a message about the survey's answers goes back to the
        survey, any other to the confirmation."""
        if "form" not in errors:
            return await self.page(data, errors, status)
        return await self.review(self.answers(data), None, errors, status, new_intent)


class CancelController(Controller):
    dependencies = {"cancel": Provide(Cancel.of)}

    @get("/{subscription_id:str}/cancel", name="portal:subscription_cancel_form")
    async def cancel_form(self, cancel: NamedDependency[Cancel]) -> Response:
        return await cancel.page({})

    @get("/{subscription_id:str}/cancel/review", name="portal:subscription_cancel_review_get")
    async def cancel_review_get(
        self, request: Request, cancel: NamedDependency[Cancel]
    ) -> Response:
        return see_other(request, url(cancel.sub.id, "cancel"))

    @post(
        "/{subscription_id:str}/cancel/review",
        name="portal:subscription_cancel_review",
        status_code=200,
    )
    async def cancel_review(self, request: Request, cancel: NamedDependency[Cancel]) -> Response:
        data = await read_form(request)
        answers, errors = cancel.check(data)
        if answers is None:
            return await cancel.page(data, errors, status=422)
        offer = await cancellation.offer_to_show(cancel.features, cancel.sub)
        if offer is not None:
            await writes.offer_shown(who(request, cancel.access), cancel.sub, offer)
        return await cancel.review(answers, offer)

    @post("/{subscription_id:str}/cancel", name="portal:subscription_cancel", status_code=200)
    async def cancel(self, cancel: NamedDependency[Cancel]) -> Response:
        return await cancel.submit(
            messages.CANCELED,
            writes.cancel,
            show_failure=cancel.failed,
            fields=FIELDS,
            details=lambda data: writes.cancel_details(cancel.answers(data)),
        )

    @get("/{subscription_id:str}/offer", name="portal:subscription_offer_get")
    async def offer_get(self, request: Request, cancel: NamedDependency[Cancel]) -> Response:
        require(cancel.features.subscription_cancel.retention_coupon)
        return see_other(request, url(cancel.sub.id, "cancel"))

    @post("/{subscription_id:str}/offer", name="portal:subscription_offer", status_code=200)
    async def accept_offer(self, cancel: NamedDependency[Cancel]) -> Response:
        require(cancel.features.subscription_cancel.retention_coupon)
        offer = await cancellation.available_offer(cancel.features, cancel.sub)
        return await cancel.submit(
            messages.OFFER_ACCEPTED,
            writes.accept_offer,
            check=lambda data: (offer, {} if offer else blocked("no_offer")),
            show_failure=lambda data, errors, status, new_intent: cancel.review(
                cancel.answers(data), offer, errors, status, new_intent
            ),
        )
