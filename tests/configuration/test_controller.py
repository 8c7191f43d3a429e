"""Public branding resources: the per-portal stylesheet and brand images."""

from __future__ import annotations

import re

import pytest

from app.configuration import colours
from app.configuration.tables import BrandAsset, PortalConfiguration

PNG = b"\x89PNG\r\n\x1a\n"


async def _stylesheet_url(portal) -> str:
    page = await portal.client.get(portal.login_path)
    found = re.search(r'<link rel="stylesheet" href="(/p/brand/[^"]+)">', page.text)
    assert found, "the login page links no brand stylesheet"
    return found.group(1).replace("&amp;", "&")


def _properties(css: str) -> dict[str, str]:
    return dict(re.findall(r"(--[a-z-]+):([^;]+);", css))


async def _set_colours(brand: str, accent: str) -> None:
    await PortalConfiguration.update(
        {PortalConfiguration.brand_color: brand, PortalConfiguration.accent_color: accent}
    ).where(PortalConfiguration.is_default.eq(True))


async def test_the_brand_stylesheet(portal):
    url = await _stylesheet_url(portal)
    response = await portal.client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["cache-control"].startswith("public")
    assert response.headers["x-content-type-options"] == "nosniff"
    props = _properties(response.text)
    assert props["--brand"] == "#4f46e5"
    assert props["--accent"] == "#0e7490"
    for name in ("--brand-fill", "--brand-text", "--brand-ink", "--font", "--radius"):
        assert name in props


@pytest.mark.parametrize(
    ("brand", "accent"),
    [("#777777", "#ffff00"), ("#ffffff", "#000000"), ("#22c55e", "#f97316")],
)
async def test_brand_colours_always_give_readable_text(portal, brand, accent):
    await _set_colours(brand, accent)
    url = await _stylesheet_url(portal)  # a new version in the URL when the colours change
    props = _properties((await portal.client.get(url)).text)
    assert props["--brand"] == brand
    for prefix in ("--brand", "--accent"):
        assert colours.contrast(props[f"{prefix}-fill"], props[f"{prefix}-text"]) >= 4.5
        assert colours.contrast(props[f"{prefix}-ink"], colours.WHITE) >= 4.5


async def test_the_stylesheet_url_changes_with_the_colours(portal):
    before = await _stylesheet_url(portal)
    await _set_colours("#123456", "#0e7490")
    after = await _stylesheet_url(portal)
    assert before != after
    assert before.split("?")[0] == after.split("?")[0]


async def test_odd_stored_values_never_reach_the_css(portal):
    await _set_colours("red;}{x", "#0e7490")  # (the column holds 7 characters)
    props = _properties((await portal.client.get(await _stylesheet_url(portal))).text)
    assert colours.is_hex_colour(props["--brand"])
    assert "{x" not in str(props)


async def test_an_unknown_portal_has_no_stylesheet(portal):
    url = await _stylesheet_url(portal)
    configuration_id = re.search(r"/p/brand/([^/.?]+)", url).group(1)  # type: ignore[union-attr]
    response = await portal.client.get(url.replace(configuration_id, "bpc_nope"))
    assert response.status_code == 404


async def test_the_logo(demo_portal):
    page = await demo_portal.client.get(demo_portal.login_path)
    src = re.search(r'<img class="brand__logo" src="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = await demo_portal.client.get(src)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content.startswith(PNG)
    asset_id = src.rsplit("/", 1)[1]
    stored = await BrandAsset.select(BrandAsset.data).where(BrandAsset.id == asset_id).first()
    assert stored is not None
    assert bytes(stored["data"]) == response.content


async def test_an_unknown_asset_is_not_found(portal):
    response = await portal.client.get("/p/assets/" + "0" * 64)
    assert response.status_code == 404
    assert "Page not found" in response.text
