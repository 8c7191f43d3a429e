"""Reading portal configurations (the merchant settings issue adds editing)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from app import clock, db
from app.audit import service as audit
from app.configuration import colours
from app.configuration.features import Features, decode
from app.configuration.tables import PortalConfiguration
from app.i18n import gettext as _

FONTS = {
    "system": 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
    "serif": 'Georgia, "Times New Roman", serif',
    "rounded": '"Nunito", "Varela Round", system-ui, sans-serif',
    "mono": 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace',
}
CORNERS = {"square": "0", "rounded": "0.5rem", "pill": "999px"}


def new_login_token() -> str:
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def new_configuration_id() -> str:
    return f"bpc_{secrets.token_hex(12)}"


async def by_login_token(token: str) -> PortalConfiguration | None:
    """The configuration behind an active login link, or None (unknown, rotated or switched off)."""
    if not token or len(token) > 64:
        return None
    return (
        await PortalConfiguration.objects()
        .where(
            (PortalConfiguration.login_page_token == token)
            & (PortalConfiguration.login_page_enabled.eq(True))
            & (PortalConfiguration.active.eq(True))
        )
        .first()
    )


async def get(configuration_id: str) -> PortalConfiguration | None:
    return (
        await PortalConfiguration.objects()
        .where(PortalConfiguration.id == configuration_id)
        .first()
    )


async def default() -> PortalConfiguration | None:
    return (
        await PortalConfiguration.objects().where(PortalConfiguration.is_default.eq(True)).first()
    )


def features(configuration: PortalConfiguration) -> Features:
    return decode(configuration.features)


def login_path(configuration: PortalConfiguration) -> str:
    return f"/p/login/{configuration.login_page_token}"


def brand_css(configuration: PortalConfiguration) -> str:
    """The stylesheet that applies a configuration's branding through CSS custom properties."""
    return _brand_css(*_brand_values(configuration))


def brand_version(configuration: PortalConfiguration) -> str:
    """Changes whenever the branding does, so the stylesheet URL can be cached."""
    return _brand_version(*_brand_values(configuration))


def _brand_values(configuration: PortalConfiguration) -> tuple[str, str, str, str]:
    """What the stylesheet depends on (the caches' key)."""
    return (
        configuration.brand_color,
        configuration.accent_color,
        configuration.font,
        configuration.corner_style,
    )


# Every page names the stylesheet's version: both are cached by the four values they depend on
# (the palette's contrast calculations cost more than the rest of the page's context).
@lru_cache(maxsize=256)
def _brand_css(brand_color: str, accent_color: str, font: str, corner_style: str) -> str:
    # Values are validated on save; checking again here keeps anything odd out of the CSS.
    brand = brand_color if colours.is_hex_colour(brand_color) else "#1f4ed8"
    accent = accent_color if colours.is_hex_colour(accent_color) else "#0f766e"
    props = colours.palette(brand, accent)
    props["--font"] = FONTS.get(font, FONTS["system"])
    props["--radius"] = CORNERS.get(corner_style, CORNERS["rounded"])
    body = "".join(f"{name}:{value};" for name, value in props.items())
    return f":root{{{body}}}\n"


@lru_cache(maxsize=256)
def _brand_version(brand_color: str, accent_color: str, font: str, corner_style: str) -> str:
    css = _brand_css(brand_color, accent_color, font, corner_style)
    return hashlib.sha256(css.encode()).hexdigest()[:12]


def branding(configuration: PortalConfiguration | None) -> dict[str, str | None]:
    """What every customer-facing page needs to show a configuration's brand."""
    if configuration is None:
        return {
            "business_name": "Portico",
            "brand_css_url": None,
            "logo_url": None,
            "icon_url": None,
        }
    return {
        "business_name": configuration.business_name or "Portico",
        "brand_css_url": f"/p/brand/{configuration.id}/brand.css?v={brand_version(configuration)}",
        "logo_url": f"/p/assets/{configuration.logo}" if configuration.logo else None,
        "icon_url": f"/p/assets/{configuration.icon}" if configuration.icon else None,
    }


# --- editing (the merchant settings pages) ----------------------------------------------------
# Every change is one write transaction and one audit event naming the fields that changed, with
# their values before and after. Saving unchanged values writes nothing and records nothing.

PROFILE_FIELDS = (
    "business_name",
    "headline",
    "privacy_policy_url",
    "terms_of_service_url",
    "default_return_url",
)
BRANDING_FIELDS = ("brand_color", "accent_color", "font", "corner_style", "logo", "icon")
DEFAULT_BRAND_COLOR = "#1f4ed8"
DEFAULT_ACCENT_COLOR = "#0f766e"


async def _apply(
    configuration_id: str, changes: Mapping[str, Any], *, action: str, actor: audit.Actor
) -> PortalConfiguration | None:
    async with db.write():
        current = await get(configuration_id)
        if current is None:
            return None
        before = {
            name: getattr(current, name)
            for name, value in changes.items()
            if getattr(current, name) != value
        }
        if before:
            after = {name: changes[name] for name in before}
            columns: dict[Any, Any] = {
                PortalConfiguration._meta.get_column_by_name(name): value
                for name, value in after.items()
            }
            columns[PortalConfiguration.updated] = clock.now()
            await PortalConfiguration.update(columns).where(
                PortalConfiguration.id == configuration_id
            )
            await audit.record(
                actor,
                action,
                configuration=configuration_id,
                object_type="portal_configuration",
                object_id=configuration_id,
                before=before,
                after=after,
            )
    return await get(configuration_id)


async def update_profile(
    configuration_id: str, values: Mapping[str, str], actor: audit.Actor
) -> PortalConfiguration | None:
    """Store validated business-profile values (``app.configuration.forms.ProfileForm``)."""
    changes = {name: values[name] for name in PROFILE_FIELDS if name in values}
    return await _apply(
        configuration_id, changes, action="configuration.profile_updated", actor=actor
    )


async def update_branding(
    configuration_id: str, values: Mapping[str, str | None], actor: audit.Actor
) -> PortalConfiguration | None:
    """Store validated branding values; ``logo``/``icon`` are ``BrandAsset`` ids (None removes)."""
    changes = {name: values[name] for name in BRANDING_FIELDS if name in values}
    return await _apply(
        configuration_id, changes, action="configuration.branding_updated", actor=actor
    )


async def set_login_page_enabled(
    configuration_id: str, enabled: bool, actor: audit.Actor
) -> PortalConfiguration | None:
    """Turn the login link on or off (off: it answers 404 until turned on again)."""
    state = "activated" if enabled else "deactivated"
    action = f"configuration.login_link_{state}"
    return await _apply(
        configuration_id, {"login_page_enabled": enabled}, action=action, actor=actor
    )


def token_fingerprint(token: str) -> str:
    """What the activity log keeps of a login token: enough to tell two apart, not to use one."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


async def rotate_login_token(
    configuration_id: str, actor: audit.Actor
) -> PortalConfiguration | None:
    """A new random login token; the old link stops working at once."""
    async with db.write():
        current = await get(configuration_id)
        if current is None:
            return None
        token = new_login_token()
        await PortalConfiguration.update(
            {PortalConfiguration.login_page_token: token, PortalConfiguration.updated: clock.now()}
        ).where(PortalConfiguration.id == configuration_id)
        await audit.record(
            actor,
            "configuration.login_link_rotated",
            configuration=configuration_id,
            object_type="portal_configuration",
            object_id=configuration_id,
            before={"login_page_token_sha256": token_fingerprint(current.login_page_token)},
            after={"login_page_token_sha256": token_fingerprint(token)},
        )
    return await get(configuration_id)


def login_url(base_url: str, configuration: PortalConfiguration) -> str:
    return base_url.rstrip("/") + login_path(configuration)


def prefilled_login_url(base_url: str, configuration: PortalConfiguration, email: str) -> str:
    """The login link with ``?prefilled_email=``, every reserved character percent-encoded
    (``+`` → ``%2B``, ``@`` → ``%40``), so the address arrives exactly as given."""
    return f"{login_url(base_url, configuration)}?prefilled_email={quote(email, safe='')}"


def scoped_brand_css(selector: str, brand: str, accent: str, font: str, corner_style: str) -> str:
    """``brand_css`` for values that are not saved yet (the settings preview), applied to
    ``selector`` instead of the whole page. Anything invalid falls back to the defaults."""
    brand = brand if colours.is_hex_colour(brand) else DEFAULT_BRAND_COLOR
    accent = accent if colours.is_hex_colour(accent) else DEFAULT_ACCENT_COLOR
    props = colours.palette(brand, accent)
    props["--font"] = FONTS.get(font, FONTS["system"])
    props["--radius"] = CORNERS.get(corner_style, CORNERS["rounded"])
    body = "".join(f"{name}:{value};" for name, value in props.items())
    return f"{selector}{{{body}}}\n"


def colour_notes(brand: str, accent: str) -> list[dict[str, str]]:
    """What Portico will change about the chosen colours so text stays readable (WCAG AA):
    one note per adjustment, naming the colour that will be used instead."""
    notes: list[dict[str, str]] = []
    for field, label, colour in (
        ("brand_color", _("brand colour"), brand),
        ("accent_color", _("accent colour"), accent),
    ):
        if not colours.is_hex_colour(colour):
            continue
        colour = colour.lower()
        ink = colours.readable_on(colour)
        if ink != colour:
            notes.append(
                {
                    "field": field,
                    "message": _(
                        "The %(label)s %(colour)s has a contrast of only %(ratio).1f:1 on white "
                        "(links and text need 4.5:1): it will be darkened to %(ink)s for links "
                        "and text."
                    )
                    % {
                        "label": label,
                        "colour": colour,
                        # rounded down, so 4.46:1 never reads as 4.5:1
                        "ratio": int(colours.contrast(colour, colours.WHITE) * 10) / 10,
                        "ink": ink,
                    },
                }
            )
        background = colours.fill(colour)[0]
        if background != colour:
            notes.append(
                {
                    "field": field,
                    "message": _(
                        "Neither white nor dark text reaches 4.5:1 on the %(label)s %(colour)s: "
                        "where it is a background (buttons, the header), %(background)s will be "
                        "used with white text."
                    )
                    % {"label": label, "colour": colour, "background": background},
                }
            )
    return notes


async def ensure_default(actor: audit.Actor) -> PortalConfiguration:
    """The default configuration, created (with its login link off) on a fresh installation, so
    the settings pages always have something to edit."""
    async with db.write():
        existing = await default()
        if existing is not None:
            return existing
        now = clock.now()
        configuration = PortalConfiguration(
            id=new_configuration_id(),
            name="Default",
            is_default=True,
            active=True,
            login_page_enabled=False,
            login_page_token=new_login_token(),
            created=now,
            updated=now,
        )
        await PortalConfiguration.insert(configuration)
        await audit.record(
            actor,
            "configuration.created",
            configuration=configuration.id,
            object_type="portal_configuration",
            object_id=configuration.id,
            after={"is_default": True, "login_page_enabled": False},
        )
    return configuration
