"""What the subscription pages share: rendering, finding the customer's subscription, and how
every form that changes a subscription is submitted (``submit``):

intent (missing: "expired", 422) → replayed key (the first answer again, after writing the audit
event if the first submit died before it: ``writes.replayed``) → ``check`` (the rules and the
input: 422 with messages) → ``run`` (gateway, then one audit event) → flash + 303 / HX-Location
to the list. A gateway failure shows the form again (``gateway_failure``: 422, or 502
when billing did not answer, with the intents ``intents`` prescribes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.billing import queries
from app.billing.gateway import BillingGateway, GatewayError
from app.billing.queries import SubscriptionView
from app.configuration.features import Features
from app.i18n import gettext as _
from app.portal.access import CustomerAccess, features_on, who
from app.portal.activity import Who
from app.portal.intents import Issuer, idempotency_key, read_intent
from app.portal.responses import done, gateway_failure, render
from app.portal.subscriptions import writes
from app.portal.subscriptions.eligibility import blocker_message
from app.portal.subscriptions.messages import MESSAGES
from app.web.forms import read_form
from app.web.state import gateway_of

T = TypeVar("T")
LIST_URL = "/portal/subscriptions"
TEMPLATES = "portal/subscriptions/"
Errors = dict[str, str]
# A write of ``writes``: (gateway, who, subscription, what the form asked for, key).
Write = Callable[[BillingGateway, Who, SubscriptionView, Any, str], Awaitable[SubscriptionView]]


class Show(Protocol):
    """Shows the form again: the submitted values, messages, status and intents."""

    def __call__(
        self, data: dict[str, str], errors: Errors, status: int, new_intent: Issuer
    ) -> Awaitable[Response]: ...


def url(subscription_id: str, step: str = "") -> str:
    return f"{LIST_URL}/{subscription_id}" + (f"/{step}" if step else "")


async def page(
    request: Request, access: CustomerAccess, template: str, *, status: int = 200, **values: Any
) -> Response:
    return await render(
        request, access, TEMPLATES + template, nav="subscriptions", status=status, **values
    )


async def subscription(access: CustomerAccess, subscription_id: str) -> SubscriptionView:
    """The signed-in customer's subscription; 404 for an unknown id or another customer's."""
    sub = await queries.subscription(access.customer.id, subscription_id)
    if sub is None:
        raise NotFoundException()
    return sub


def blocked(code: str | None, at: str = "form") -> Errors:
    """The message for a blocker code, at the top of the form (or ``at``); none without one."""
    return {at: blocker_message(code)} if code else {}


async def replay(
    request: Request, access: CustomerAccess, action: str, sub: SubscriptionView
) -> Response:
    """The answer to a form sent again: the same page and message as the first time."""
    fresh = await queries.subscription(access.customer.id, sub.id) or sub
    return await done(request, access, LIST_URL, MESSAGES[action](fresh, access.customer.time_zone))


async def submit(
    request: Request,
    access: CustomerAccess,
    sub: SubscriptionView,
    action: str,
    *,
    check: Callable[[dict[str, str]], tuple[T, Errors]],
    run: Callable[[Who, str, T], Awaitable[SubscriptionView]],
    show: Show,
    show_failure: Show | None = None,
    form: str = "form",
    fields: Mapping[str, str] | None = None,
    message: Callable[[SubscriptionView, T], str] | None = None,
    details: Callable[[dict[str, str]], dict[str, Any]] | None = None,
) -> Response:
    """Submit a form that changes ``sub`` (see the module docstring). ``check`` turns the form
    into what ``run`` needs, with messages; ``show`` (``show_failure`` after a gateway failure)
    shows the form again; ``form`` names it (its errors' default place, its intent);
    ``details`` reads what an event written for a replay keeps of the form."""
    data = await read_form(request)
    intent = read_intent(data)
    if intent is None:
        expired = _("This form has expired, reload the page and try again.")
        return await show(data, {form: expired}, 422, Issuer())
    key = idempotency_key(access.customer.id, action, intent)
    acting = who(request, access)
    extra = (lambda: details(data)) if details is not None else None
    if await writes.replayed(acting, action, sub, key, extra):
        return await replay(request, access, action, sub)
    value, errors = check(data)
    if errors:
        return await show(data, errors, 422, Issuer())
    try:
        fresh = await run(acting, key, value)
    except GatewayError as error:
        failure = gateway_failure(error, form=form, intent=intent, fields=fields)
        return await (show_failure or show)(data, *failure)
    if message is not None:
        text = message(fresh, value)
    else:
        text = MESSAGES[action](fresh, access.customer.time_zone)
    return await done(request, access, LIST_URL, text)


class Flow:
    """One subscription's flow (change, cancel, pause), a dependency of its controller's handlers
    (``Provide(<Flow>.of)``): the request, the signed-in customer, the configuration's features,
    the subscription, and why the flow's action is not possible (``blocker``, set by ``prepare``).
    404 when ``enabled`` says the feature is off, or for another customer's subscription."""

    blocker: str | None = None

    def __init__(
        self, request: Request, access: CustomerAccess, features: Features, sub: SubscriptionView
    ) -> None:
        self.request = request
        self.access = access
        self.features = features
        self.sub = sub
        self.gateway = gateway_of(request)

    @classmethod
    async def of(
        cls,
        request: Request,
        access: NamedDependency[CustomerAccess],
        subscription_id: FromPath[str],
    ) -> Flow:
        features = features_on(access, cls.enabled)
        flow = cls(request, access, features, await subscription(access, subscription_id))
        await flow.prepare()
        return flow

    @staticmethod
    def enabled(features: Features) -> bool:
        """The flow's feature switch."""
        raise NotImplementedError

    async def prepare(self) -> None:
        """What the flow reads before its pages; sets ``blocker``."""

    template = ""  # the flow's form

    def check(self, data: dict[str, str]) -> tuple[Any, Errors]:
        """What the action needs from the submitted form, or messages (the blocker first)."""
        raise NotImplementedError

    def context(self) -> dict[str, Any]:
        """What the flow's form shows besides the subscription and the submitted values."""
        return {}

    async def page(
        self,
        values: dict[str, str],
        errors: Errors | None = None,
        status: int = 200,
        new_intent: Issuer | None = None,
    ) -> Response:
        """The flow's form: the subscription, the blocker's message, the submitted values and
        messages (a ``Show``)."""
        return await page(
            self.request,
            self.access,
            self.template,
            status=status,
            sub=self.sub,
            blocked=blocker_message(self.blocker) if self.blocker else None,
            values=values,
            errors=errors or {},
            new_intent=new_intent or Issuer(),
            **self.context(),
        )

    async def submit(self, action: str, write: Write, **options: Any) -> Response:
        """``submit`` this flow's form: checked by ``check``, carried out by ``write`` (one of
        ``writes``), shown again by ``page``."""

        def run(who: Who, key: str, value: Any) -> Awaitable[SubscriptionView]:
            return write(self.gateway, who, self.sub, value, key)

        options = {"check": self.check, "show": self.page, **options}
        return await submit(self.request, self.access, self.sub, action, run=run, **options)
