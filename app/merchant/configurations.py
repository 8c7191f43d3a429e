"""The configurations page: every portal configuration (each with its own login link, branding and
features), creating one, renaming one, and choosing the default.

- ``GET /merchant/configurations``: the list, with links to each configuration's settings pages,
  and the **Create configuration** form.
- ``POST /merchant/configurations``: create (login link off; default features; the default
  configuration's branding).
- ``POST /merchant/configurations/{id}/make-default``: exactly one default, in one transaction.
- ``GET|POST /merchant/configurations/{id}/name``: rename.

Plain forms (POST → 303 → page with a flash) that htmx enhances (``hx-post`` to the same URL,
``#main-content`` swapped, success through ``done``); invalid input: the form again with its
message and 422.
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.configuration import editing
from app.configuration import service as configurations
from app.configuration.tables import PortalConfiguration
from app.i18n import gettext as _
from app.merchant.access import EXCEPTION_HANDLERS, MerchantAccess, actor, done, merchant_access
from app.merchant.configuration_forms import NameForm
from app.merchant.settings import configuration_or_404, merchant_context
from app.web.forms import parse, read_form
from app.web.htmx import page

LIST_URL = "/merchant/configurations"


def name_url(configuration_id: str) -> str:
    return f"{LIST_URL}/{configuration_id}/name"


def make_default_url(configuration_id: str) -> str:
    return f"{LIST_URL}/{configuration_id}/make-default"


async def current_configuration(request: Request, access: MerchantAccess) -> PortalConfiguration:
    """The default configuration (created on a fresh installation): the merchant pages that are
    not about one configuration link to its settings."""
    return await configurations.default() or await configurations.ensure_default(
        actor(request, access)
    )


class ConfigurationsController(Controller):
    path = LIST_URL
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="merchant:configurations")
    async def index(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        return await self._list(request, access, {}, {})

    @post("/", name="merchant:configurations_create")
    async def create(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        data = await read_form(request)
        form, errors = parse(NameForm, data)
        if not errors:
            try:
                created = await editing.create(form.cleaned(), actor(request, access))
            except editing.NameTaken as taken:
                errors = {"name": taken.message()}
            else:
                return await done(
                    request,
                    access,
                    LIST_URL,
                    _(
                        "Configuration “%(name)s” created. Its login link is off until you "
                        "activate it."
                    )
                    % {"name": created.name},
                )
        return await self._list(
            request, access, {"name": data.get("name", "")[:200]}, errors, status=422
        )

    @post("/{configuration_id:str}/make-default", name="merchant:configurations_make_default")
    async def make_default(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await editing.make_default(configuration_id, actor(request, access))
        if configuration is None:
            raise NotFoundException()
        return await done(
            request,
            access,
            LIST_URL,
            _("“%(name)s” is now the default configuration.") % {"name": configuration.name},
        )

    @get("/{configuration_id:str}/name", name="merchant:configurations_name")
    async def name_form(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        return await self._name_page(
            request, access, configuration, {"name": configuration.name}, {}
        )

    @post("/{configuration_id:str}/name", name="merchant:configurations_rename")
    async def rename(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        data = await read_form(request)
        form, errors = parse(NameForm, data)
        if not errors:
            try:
                renamed = await editing.rename(
                    configuration.id, form.cleaned(), actor(request, access)
                )
            except editing.NameTaken as taken:
                errors = {"name": taken.message()}
            else:
                if renamed is None:
                    raise NotFoundException()
                return await done(
                    request,
                    access,
                    LIST_URL,
                    _("Configuration renamed to “%(name)s”.") % {"name": renamed.name},
                )
        return await self._name_page(
            request,
            access,
            configuration,
            {"name": data.get("name", "")[:200]},
            errors,
            status=422,
        )

    async def _list(
        self,
        request: Request,
        access: MerchantAccess,
        values: dict[str, str],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        configuration = await current_configuration(request, access)
        return page(
            request,
            "merchant/configurations/list.html",
            fragment="main_content",
            status=status,
            context={
                **await merchant_context(access, configuration, "configurations"),
                "rows": await editing.list_configurations(),
                "list_url": LIST_URL,
                "values": {"name": values.get("name", "")},
                "errors": errors,
                "name_max": editing.NAME_MAX,
                "name_url": name_url,
                "make_default_url": make_default_url,
                "settings_url": lambda id_, name: f"{LIST_URL}/{id_}/{name}",
            },
        )

    async def _name_page(
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
            "merchant/configurations/name.html",
            fragment="main_content",
            status=status,
            context={
                **await merchant_context(access, configuration, "configurations"),
                "values": values,
                "errors": errors,
                "name_max": editing.NAME_MAX,
                "action_url": name_url(configuration.id),
                "list_url": LIST_URL,
            },
        )
