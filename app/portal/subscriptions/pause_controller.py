"""Pausing payments (until a date or until resumed) and resuming them; 404 when pausing is off."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide

from app import clock
from app.configuration.features import Features
from app.portal.subscriptions import eligibility, messages, pausing, writes
from app.portal.subscriptions.flow import LIST_URL, Errors, Flow, blocked
from app.portal.subscriptions.forms import PauseForm
from app.portal.subscriptions.listing import list_action
from app.web.forms import parse
from app.web.htmx import see_other

# The gateway's field names → the form's.
FIELDS = {"mode": "mode", "resume_on": "resume_on", "resumes_at": "resume_on"}


class Pause(Flow):
    """One subscription's pause (a dependency of every handler here)."""

    template = "pause.html"

    @staticmethod
    def enabled(features: Features) -> bool:
        return features.subscription_pause.enabled

    async def prepare(self) -> None:
        self.blocker = eligibility.pause_blocker(self.sub)

    def check(self, data: dict[str, str]) -> tuple[datetime | None, Errors]:
        """When payments resume (None: when the customer resumes them), or messages."""
        if self.blocker:
            return None, blocked(self.blocker)
        form, errors = parse(PauseForm, data)
        tz = self.access.customer.time_zone
        return pausing.validate_pause(form, clock.now(), tz, errors), errors

    def context(self) -> dict[str, Any]:
        first, last = pausing.pause_window(clock.now(), self.access.customer.time_zone)
        return {
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "months": pausing.PAUSE_MONTHS,
        }


class PauseController(Controller):
    dependencies = {"pause": Provide(Pause.of)}

    @get("/{subscription_id:str}/pause", name="portal:subscription_pause_form")
    async def pause_form(self, pause: NamedDependency[Pause]) -> Response:
        return await pause.page({})

    @post("/{subscription_id:str}/pause", name="portal:subscription_pause", status_code=200)
    async def pause_payments(self, pause: NamedDependency[Pause]) -> Response:
        return await pause.submit(
            messages.PAUSED,
            writes.pause,
            fields=FIELDS,
        )

    @get("/{subscription_id:str}/resume", name="portal:subscription_resume_get")
    async def resume_get(self, request: Request, pause: NamedDependency[Pause]) -> Response:
        return see_other(request, LIST_URL)

    @post("/{subscription_id:str}/resume", name="portal:subscription_resume", status_code=200)
    async def resume(self, request: Request, pause: NamedDependency[Pause]) -> Response:
        sub = pause.sub
        return await list_action(
            request,
            pause.access,
            sub,
            messages.RESUMED,
            eligibility.resume_blocker(sub),
            writes.resume,
        )
