"""Reading portal configurations (the merchant settings issue adds editing)."""

from __future__ import annotations

import hashlib
import secrets

from app.configuration import colours
from app.configuration.features import Features, decode
from app.configuration.tables import PortalConfiguration

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
    # Values are validated on save; checking again here keeps anything odd out of the CSS.
    brand = (
        configuration.brand_color if colours.is_hex_colour(configuration.brand_color) else "#1f4ed8"
    )
    accent = (
        configuration.accent_color
        if colours.is_hex_colour(configuration.accent_color)
        else "#0f766e"
    )
    props = colours.palette(brand, accent)
    props["--font"] = FONTS.get(configuration.font, FONTS["system"])
    props["--radius"] = CORNERS.get(configuration.corner_style, CORNERS["rounded"])
    body = "".join(f"{name}:{value};" for name, value in props.items())
    return f":root{{{body}}}\n"


def brand_version(configuration: PortalConfiguration) -> str:
    """Changes whenever the branding does, so the stylesheet URL can be cached."""
    return hashlib.sha256(brand_css(configuration).encode()).hexdigest()[:12]


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
