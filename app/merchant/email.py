"""Email delivery settings (``/merchant/email``) and the outbox (``/merchant/email/outbox``).

- **Save** posts the SMTP settings. Fields the environment controls (``PORTICO_SMTP_*`` when
  ``PORTICO_SMTP_HOST`` is set, ``PORTICO_MAIL_FROM``) are shown read-only and never read from
  the form. The password field is always empty: leaving it empty keeps the stored password.
- **Send test email** queues a ``test`` message through the normal outbox (at most
  ``TEST_LIMIT`` per merchant in ten minutes), then shows the outbox, where its status appears.

These pages belong to the installation, not to one portal configuration; the navigation around
them comes from the default configuration.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery

from app.configuration import service as configurations
from app.i18n import gettext as _
from app.i18n import ngettext
from app.mail import outbox
from app.mail import settings as mail_settings
from app.mail.forms import MailSettingsForm, SendTestForm
from app.merchant.access import EXCEPTION_HANDLERS, MerchantAccess, actor, done, merchant_access
from app.merchant.settings import merchant_context
from app.web.forms import parse, read_form
from app.web.htmx import page as render_page
from app.web.htmx import see_other
from app.web.state import settings_of

EMAIL_PATH = "/merchant/email"
MAIL_URLS = {
    "email": EMAIL_PATH,
    "email_test": f"{EMAIL_PATH}/test",
    "outbox": f"{EMAIL_PATH}/outbox",
}
EDITABLE = ("host", "port", "security", "username", "sender_name", "sender_address")


async def area_context(
    request: Request, access: MerchantAccess, nav: str, *, flashes: bool = True
) -> dict[str, Any]:
    """``merchant_context`` for pages of the whole installation (the nav needs a
    configuration: the default one, created on a fresh installation)."""
    configuration = await configurations.default()
    if configuration is None:
        configuration = await configurations.ensure_default(actor(request, access))
    return {
        **await merchant_context(access, configuration, nav, flashes=flashes),
        "mail_urls": MAIL_URLS,
    }


def security_labels() -> dict[str, str]:
    return {
        "starttls": _("STARTTLS (usually port 587)"),
        "tls": _("TLS (usually port 465)"),
        "none": _("None: not encrypted (only for a server on your own network)"),
    }


def status_explanations() -> dict[str, tuple[str, str]]:
    """Each outbox status with its name and what it means, in plain words."""
    return {
        "queued": (_("Queued"), _("waiting to be sent; it is tried again after a failure")),
        "sending": (_("Sending"), _("being handed to the mail server right now")),
        "sent": (_("Sent"), _("the mail server accepted it for delivery")),
        "failed": (
            _("Failed"),
            _("every attempt failed, so it was given up; the last error says why"),
        ),
        "skipped": (_("Skipped"), _("no customer has this address, so nothing was sent")),
        "expired": (
            _("Expired"),
            _("the sign-in code it carried ran out before it could be sent, so it was dropped"),
        ),
    }


def kind_labels() -> dict[str, str]:
    return {"passcode": _("Sign-in code"), "test": _("Test email")}


def saved_values(stored: mail_settings.StoredMail | None) -> dict[str, str]:
    stored = stored or mail_settings.StoredMail()
    return {name: str(getattr(stored, name)) for name in EDITABLE}


def _limited_message(retry_after: int) -> str:
    minutes = max(1, (retry_after + 59) // 60)
    return ngettext(
        "You can send %(limit)d test emails every 10 minutes. Try again in %(n)d minute.",
        "You can send %(limit)d test emails every 10 minutes. Try again in %(n)d minutes.",
        minutes,
    ) % {"limit": mail_settings.TEST_LIMIT, "n": minutes}


def _page_number(value: str) -> int:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 7 else 1


class EmailController(Controller):
    path = EMAIL_PATH
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="merchant:email")
    async def email(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        stored = await mail_settings.load(settings_of(request))
        return await self._page(request, access, stored, saved_values(stored))

    @post("/", name="merchant:email_save")
    async def save(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        settings = settings_of(request)
        locked = set(mail_settings.env_fields(settings))
        data = await read_form(request)
        form = MailSettingsForm(
            **{name: data.get(name, "") for name in MailSettingsForm.__struct_fields__}
        )
        errors = form.check(locked)
        if errors:
            stored = await mail_settings.load(settings)
            values = {name: data.get(name, "") for name in EDITABLE}
            return await self._page(
                request,
                access,
                stored,
                values,
                errors,
                removing=bool(data.get("remove_password")),
                status=422,
            )
        await mail_settings.save(settings, form.cleaned(locked), actor(request, access))
        cache = getattr(request.app.state, "mail_settings", None)
        if cache is not None:
            await cache.refresh()  # this process's worker uses the new settings at once
        return await done(request, access, EMAIL_PATH, _("Email delivery settings saved."))

    @get("/test", name="merchant:email_test_page")
    async def test_page(
        self, request: Request, access: NamedDependency[MerchantAccess]
    ) -> Response:
        """Reloading the address bar after a re-rendered test form lands here."""
        return see_other(request, EMAIL_PATH)

    @post("/test", name="merchant:email_test")
    async def send_test(
        self, request: Request, access: NamedDependency[MerchantAccess]
    ) -> Response:
        settings = settings_of(request)
        data = await read_form(request)
        form, errors = parse(SendTestForm, data)
        status = 422
        retry_after = 0
        if not errors:
            try:
                await mail_settings.queue_test_email(
                    settings,
                    form.cleaned(),
                    actor(request, access),
                    subject=_("Portico test email"),
                    sent_by=access.account.email,
                )
            except mail_settings.TooManyTestEmails as limited:
                errors = {"test_to": _limited_message(limited.retry_after)}
                status, retry_after = 429, limited.retry_after
            else:
                return await done(
                    request,
                    access,
                    MAIL_URLS["outbox"],
                    _("Test email queued to %(address)s.") % {"address": form.cleaned()},
                )
        stored = await mail_settings.load(settings)
        return await self._page(
            request,
            access,
            stored,
            saved_values(stored),
            errors,
            test_to=data.get("test_to", "")[:320],
            status=status,
            headers={"Retry-After": str(retry_after)} if retry_after else None,
        )

    @get("/outbox", name="merchant:outbox")
    async def outbox(
        self,
        request: Request,
        access: NamedDependency[MerchantAccess],
        page: FromQuery[str] = "1",
        status: FromQuery[str] = "",
    ) -> Response:
        status = status if status in outbox.STATUSES else ""
        found = await outbox.recent(_page_number(page), status)
        return render_page(
            request,
            "merchant/email/outbox.html",
            fragment="main_content",
            context={
                **await area_context(request, access, "email"),
                "outbox": found,
                "status_filter": status,
                "statuses": status_explanations(),
                "kinds": kind_labels(),
            },
        )

    async def _page(
        self,
        request: Request,
        access: MerchantAccess,
        stored: mail_settings.StoredMail | None,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        *,
        removing: bool = False,
        test_to: str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        settings = settings_of(request)
        catcher = getattr(request.app.state, "catcher", None)
        locked = mail_settings.env_fields(settings)
        return render_page(
            request,
            "merchant/email/settings.html",
            fragment="main_content",
            status=status,
            headers=headers,
            context={
                **await area_context(request, access, "email"),
                "values": values,
                "errors": errors or {},
                "locked": locked,
                "env": mail_settings.env_values(settings),
                "stored": stored,
                "all_locked": all(name in locked for name in (*EDITABLE, "password")),
                "source": mail_settings.server_source(
                    settings, stored, catcher.port if catcher is not None else 0
                ),
                "removing": removing,
                "securities": security_labels(),
                "test_to": access.account.email if test_to is None else test_to,
                "test_limit": mail_settings.TEST_LIMIT,
            },
        )
