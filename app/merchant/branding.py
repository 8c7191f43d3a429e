"""The branding settings page: icon, logo, colours, font and corners, with a live preview.

- **Save** posts the whole form (multipart, with any new images) to ``…/branding``.
- **Preview** posts the same form to ``…/branding/preview`` (the button's ``formaction``), which
  re-renders the page showing the unsaved values; nothing is stored.
- With htmx the form also posts to the preview endpoint as you change it (``input changed
  delay:300ms``, images left out) and only ``#brand-preview`` is replaced.

The preview is styled by a stylesheet whose URL carries the values
(``/merchant/branding-preview.css?…``): the CSP allows no inline styles.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from app.configuration import branding as images
from app.configuration import service as configurations
from app.configuration.forms import BrandingForm
from app.configuration.tables import PortalConfiguration
from app.i18n import gettext as _
from app.merchant.access import EXCEPTION_HANDLERS, MerchantAccess, actor, done, merchant_access
from app.merchant.settings import configuration_or_404, merchant_context, urls
from app.web.htmx import page, see_other, wants_fragment

UPLOAD_BODY_BYTES = 8 * 1024 * 1024  # two images of any size a person would pick, plus fields

IMAGE_FIELDS = ("icon", "logo")


def _font_labels() -> dict[str, str]:
    labels = {
        "system": _("System (default)"),
        "serif": _("Serif"),
        "rounded": _("Rounded"),
        "mono": _("Monospace"),
    }
    return {key: labels.get(key, key) for key in configurations.FONTS}


def _corner_labels() -> dict[str, str]:
    labels = {"square": _("Square"), "rounded": _("Rounded"), "pill": _("Pill")}
    return {key: labels.get(key, key) for key in configurations.CORNERS}


def _image_names() -> dict[str, str]:
    return {"icon": _("icon"), "logo": _("logo")}


def saved_values(configuration: PortalConfiguration) -> dict[str, str]:
    return {
        "brand_color": configuration.brand_color,
        "accent_color": configuration.accent_color,
        "font": configuration.font,
        "corner_style": configuration.corner_style,
    }


async def read_branding_form(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """The text fields, and the bytes of each image field where a file was chosen."""
    form = await request.form()
    data: dict[str, str] = {}
    uploads: dict[str, bytes] = {}
    for key, value in form.multi_items():
        if key == "_csrf_token":
            continue
        if isinstance(value, UploadFile):
            if key in IMAGE_FIELDS:
                content = await value.read()
                if content or value.filename:
                    uploads[key] = content
            continue
        data[key] = value
    return data, uploads


def preview_context(
    configuration: PortalConfiguration, values: dict[str, str], errors: dict[str, str]
) -> dict[str, Any]:
    """The preview of ``values`` (where valid; saved values elsewhere) and the colour notes."""
    saved = saved_values(configuration)
    shown = {name: saved[name] if name in errors else value for name, value in values.items()}
    query = urlencode({name: shown.get(name, saved[name]) for name in saved})
    return {
        "preview_css_url": f"/merchant/branding-preview.css?{query}",
        "shown": shown,
        "notes": configurations.colour_notes(shown["brand_color"], shown["accent_color"]),
        "preview_business": configuration.business_name or "Portico",
        "preview_headline": configuration.headline,
        "preview_logo_url": f"/p/assets/{configuration.logo}" if configuration.logo else None,
    }


class MerchantBrandingController(Controller):
    path = "/merchant/configurations/{configuration_id:str}/branding"
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="merchant:branding")
    async def branding(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        return await self._page(request, access, configuration, saved_values(configuration))

    # Images over the 512 KB limit must still reach the form's validation (a message beside the
    # field, the other values kept) instead of the global 1 MiB body limit's bare 413 page.
    @post("/", name="merchant:branding_save", request_max_body_size=UPLOAD_BODY_BYTES)
    async def save(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        data, uploads = await read_branding_form(request)
        values, errors = self._parse(data)
        changes: dict[str, str | None] = dict(values)
        cleaned: dict[str, images.CleanImage] = {}
        names = _image_names()
        for field in IMAGE_FIELDS:
            if field in uploads:
                try:
                    cleaned[field] = await images.reencode_async(uploads[field], names[field])
                except images.ImageRejected as error:
                    errors[field] = str(error)
            elif data.get(f"remove_{field}"):
                changes[field] = None
        if errors:
            return await self._page(request, access, configuration, values, errors, status=422)
        for field, image in cleaned.items():
            changes[field] = await images.store(image)
        await configurations.update_branding(configuration.id, changes, actor(request, access))
        return await done(request, access, urls(configuration)["branding"], _("Branding saved."))

    @get("/preview", name="merchant:branding_preview_page")
    async def preview_page(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        return see_other(request, urls(configuration)["branding"])

    @post("/preview", name="merchant:branding_preview", request_max_body_size=UPLOAD_BODY_BYTES)
    async def preview(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        """Nothing is stored: htmx gets the preview fragment; a plain POST (the **Preview**
        button) gets the whole page with the unsaved values in the form and the preview."""
        configuration = await configuration_or_404(configuration_id)
        data, _uploads = await read_branding_form(request)
        values, errors = self._parse(data)
        return await self._page(
            request,
            access,
            configuration,
            values,
            errors,
            status=422 if errors else 200,
            fragment="brand_preview",
            previewing=True,
            removals={field: bool(data.get(f"remove_{field}")) for field in IMAGE_FIELDS},
        )

    def _parse(self, data: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        form = BrandingForm(**{name: data.get(name, "") for name in BrandingForm.__struct_fields__})
        return form.cleaned(), form.check()

    async def _page(
        self,
        request: Request,
        access: MerchantAccess,
        configuration: PortalConfiguration,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        *,
        status: int = 200,
        fragment: str = "main_content",
        previewing: bool = False,
        removals: dict[str, bool] | None = None,
    ) -> Response:
        errors = errors or {}
        return page(
            request,
            "merchant/branding.html",
            fragment=fragment,
            status=status,
            context={
                **await merchant_context(
                    access,
                    configuration,
                    "branding",
                    flashes=fragment == "main_content" or not wants_fragment(request),
                ),
                **preview_context(configuration, values, errors),
                "values": values,
                "errors": errors,
                "previewing": previewing,
                "removals": removals or {},
                "fonts": _font_labels(),
                "corners": _corner_labels(),
                "max_kb": images.MAX_UPLOAD_BYTES // 1024,
                "min_side": images.MIN_SIDE,
            },
        )
