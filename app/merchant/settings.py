"""Settings pages of one portal configuration: business profile and login link.

Routes are ``/merchant/configurations/{configuration_id}/…`` so a configuration picker can be
added without moving anything; today ``/merchant`` leads to the default configuration.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.configuration import service as configurations
from app.configuration.forms import ProfileForm
from app.configuration.tables import PortalConfiguration
from app.i18n import gettext as _
from app.login import sessions
from app.merchant.access import (
    EXCEPTION_HANDLERS,
    MerchantAccess,
    actor,
    done,
    merchant_access,
)
from app.merchant.forms import PrefillForm
from app.web.forms import read_form
from app.web.htmx import page, wants_fragment
from app.web.state import settings_of


def urls(configuration: PortalConfiguration) -> dict[str, str]:
    base = f"/merchant/configurations/{configuration.id}"
    return {
        "profile": f"{base}/profile",
        "branding": f"{base}/branding",
        "branding_preview": f"{base}/branding/preview",
        "login_link": f"{base}/login-link",
        "activate": f"{base}/login-link/activate",
        "deactivate": f"{base}/login-link/deactivate",
        "rotate": f"{base}/login-link/rotate",
        "prefill": f"{base}/login-link/prefill",
    }


async def configuration_or_404(configuration_id: str) -> PortalConfiguration:
    configuration = await configurations.get(configuration_id)
    if configuration is None:
        raise NotFoundException()
    return configuration


async def merchant_context(
    access: MerchantAccess, configuration: PortalConfiguration, nav: str, *, flashes: bool = True
) -> dict[str, Any]:
    """What every settings page shows around its content. ``flashes=False`` for fragments that
    do not show them (the preview, the prefilled link), so a pending message is not lost."""
    return {
        "account": access.account,
        "configuration": configuration,
        "urls": urls(configuration),
        "nav": nav,
        "flashes": await sessions.pop_flash(access.session) if flashes else [],
        "brand": {"business_name": "Portico"},
    }


def _profile_values(configuration: PortalConfiguration) -> dict[str, str]:
    return {name: getattr(configuration, name) or "" for name in configurations.PROFILE_FIELDS}


class SettingsController(Controller):
    path = "/merchant/configurations/{configuration_id:str}"
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    # -- business profile ---------------------------------------------------------------------
    @get("/profile", name="merchant:profile")
    async def profile(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        return await self._profile_page(
            request, access, configuration, _profile_values(configuration), {}
        )

    @post("/profile", name="merchant:profile_save")
    async def save_profile(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        data = await read_form(request)
        form = ProfileForm(**{name: data.get(name, "") for name in ProfileForm.__struct_fields__})
        errors = form.check()
        if errors:
            values = {name: data.get(name, "") for name in configurations.PROFILE_FIELDS}
            return await self._profile_page(
                request, access, configuration, values, errors, status=422
            )
        await configurations.update_profile(
            configuration.id, form.cleaned(), actor(request, access)
        )
        return await done(
            request, access, urls(configuration)["profile"], _("Business profile saved.")
        )

    async def _profile_page(
        self,
        request: Request,
        access: MerchantAccess,
        configuration: PortalConfiguration,
        values: dict[str, str],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        return page(
            request,
            "merchant/profile.html",
            fragment="main_content",
            status=status,
            context={
                **await merchant_context(access, configuration, "profile"),
                "values": values,
                "errors": errors,
            },
        )

    # -- login link ---------------------------------------------------------------------------
    @get("/login-link", name="merchant:login_link")
    async def login_link(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        return await self._login_link_page(request, access, configuration)

    @get("/login-link/prefill", name="merchant:login_link_prefill")
    async def prefill(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        """The prefill builder: the full page without JavaScript, only the result for htmx."""
        configuration = await configuration_or_404(configuration_id)
        form = PrefillForm(email=request.query_params.get("email", "")[:254])
        errors = form.check()
        prefill_url = ""
        if form.cleaned() and not errors:
            prefill_url = configurations.prefilled_login_url(
                settings_of(request).base_url, configuration, form.cleaned()
            )
        return await self._login_link_page(
            request,
            access,
            configuration,
            fragment="prefill_result",
            prefill={"email": form.email, "url": prefill_url, "errors": errors},
            status=422 if errors else 200,
        )

    @post("/login-link/activate", name="merchant:login_link_activate")
    async def activate(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        await configurations.set_login_page_enabled(configuration.id, True, actor(request, access))
        return await done(
            request,
            access,
            urls(configuration)["login_link"],
            _("The login link is on: customers can use it to sign in."),
        )

    @post("/login-link/deactivate", name="merchant:login_link_deactivate")
    async def deactivate(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        await configurations.set_login_page_enabled(configuration.id, False, actor(request, access))
        return await done(
            request,
            access,
            urls(configuration)["login_link"],
            _("The login link is off: it shows “Page not found” until you turn it on again."),
        )

    @get("/login-link/rotate", name="merchant:login_link_rotate_confirm")
    async def rotate_confirm(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        return page(
            request,
            "merchant/rotate.html",
            fragment="main_content",
            context={
                **await merchant_context(access, configuration, "login_link"),
                "login_url": configurations.login_url(settings_of(request).base_url, configuration),
            },
        )

    @post("/login-link/rotate", name="merchant:login_link_rotate")
    async def rotate(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        await configurations.rotate_login_token(configuration.id, actor(request, access))
        return await done(
            request,
            access,
            urls(configuration)["login_link"],
            _("The login link was replaced. The old link no longer works."),
        )

    async def _login_link_page(
        self,
        request: Request,
        access: MerchantAccess,
        configuration: PortalConfiguration,
        *,
        fragment: str = "main_content",
        prefill: dict[str, Any] | None = None,
        status: int = 200,
    ) -> Response:
        return page(
            request,
            "merchant/login_link.html",
            fragment=fragment,
            status=status,
            context={
                **await merchant_context(
                    access,
                    configuration,
                    "login_link",
                    flashes=fragment == "main_content" or not wants_fragment(request),
                ),
                "login_url": configurations.login_url(settings_of(request).base_url, configuration),
                "prefill": prefill or {"email": "", "url": "", "errors": {}},
                "errors": (prefill or {}).get("errors", {}),
            },
        )
