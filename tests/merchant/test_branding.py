"""The branding page: image uploads, colours, contrast notes and the live preview."""

from __future__ import annotations

import hashlib
import io
import os
import re

import pytest
from PIL import Image, PngImagePlugin

from app.configuration import branding as images
from app.configuration import service as configurations
from app.configuration.tables import BrandAsset
from tests.helpers import configuration_of, without_html
from tests.merchant.support import Elements, events, signed_in

SAVED = {
    "brand_color": "#4f46e5",
    "accent_color": "#0e7490",
    "font": "system",
    "corner_style": "rounded",
}


def picture(
    size: tuple[int, int] = (256, 256), fmt: str = "PNG", mode: str = "RGB", **save
) -> bytes:
    image = Image.new(mode, size, (200, 40, 90) if mode == "RGB" else 1)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def noise(side: int) -> bytes:
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def with_exif(size: tuple[int, int] = (200, 300), orientation: int = 6) -> bytes:
    image = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=90)
    return buffer.getvalue()


async def upload(merchant, field: str, data: bytes, filename: str, content_type: str, **extra):
    return await merchant.post(
        merchant.url("branding"),
        {**SAVED, **extra},
        files={field: (filename, data, content_type)},
    )


# -- the page -----------------------------------------------------------------------------------


async def test_the_page_has_labelled_controls_and_a_preview(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(merchant.url("branding"))
    assert response.status_code == 200
    html = response.text
    for field, label in (
        ("icon", "Icon"),
        ("logo", "Logo"),
        ("brand_color", "Brand colour"),
        ("accent_color", "Accent colour"),
        ("font", "Font"),
    ):
        assert f'<label class="field__label" for="{field}">{label}</label>' in html
    elements = Elements(html)
    inputs = {attrs.get("id"): attrs for attrs in elements.named("input")}
    assert inputs["brand_color"]["type"] == "color"
    assert inputs["brand_color"]["value"] == "#4f46e5"
    assert inputs["accent_color"]["value"] == "#0e7490"
    assert inputs["logo"]["type"] == "file"
    assert inputs["logo"]["accept"] == "image/png,image/jpeg,image/webp"
    [form] = [f for f in elements.named("form") if f.get("enctype")]
    assert form["enctype"] == "multipart/form-data"
    assert form["action"] == merchant.url("branding")
    assert form["hx-post"] == merchant.url("branding/preview")
    assert form["hx-trigger"] == "input changed delay:300ms"
    assert form["hx-target"] == "#brand-preview"
    buttons = {b.get("formaction"): b for b in elements.named("button")}
    assert merchant.url("branding/preview") in buttons
    assert ">Save</button>" in html
    assert ">Preview</button>" in html
    assert 'id="brand-preview"' in html
    assert not re.search(r"\sstyle=", html)  # the CSP allows no inline styles
    [sheet] = [
        link["href"]
        for link in elements.named("link")
        if "branding-preview.css" in (link.get("href") or "")
    ]
    assert sheet == (
        "/merchant/branding-preview.css?brand_color=%234f46e5&accent_color=%230e7490"
        "&font=system&corner_style=rounded"
    )


# -- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type", "mode"),
    [("PNG", "image/png", "RGBA"), ("JPEG", "image/jpeg", "RGB"), ("WEBP", "image/webp", "RGB")],
)
async def test_png_jpeg_and_webp_are_stored_as_clean_pngs(merchant, fmt, content_type, mode):
    await signed_in(merchant)
    data = picture((300, 200), fmt, mode=mode)
    response = await upload(merchant, "logo", data, f"logo.{fmt.lower()}", content_type)
    assert response.status_code == 303, response.text
    configuration = await configuration_of(merchant.summary)
    asset = await BrandAsset.objects().where(BrandAsset.id == configuration.logo).first()
    stored = bytes(asset.data)
    assert asset.content_type == "image/png"
    assert stored.startswith(b"\x89PNG\r\n\x1a\n")
    assert asset.id == hashlib.sha256(stored).hexdigest()
    assert (asset.width, asset.height) == (300, 200)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "PNG"
        assert image.size == (300, 200)
        assert image.mode == ("RGBA" if mode == "RGBA" else "RGB")
    served = await merchant.client.get(f"/p/assets/{asset.id}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == stored
    [event] = await events("configuration.branding_updated")
    assert event["after"] == {"logo": asset.id}
    assert event["before"]["logo"] != asset.id


async def test_metadata_is_stripped_and_orientation_applied(merchant):
    await signed_in(merchant)
    data = with_exif((200, 300), orientation=6)
    assert b"SecretCam" in data
    response = await upload(merchant, "icon", data, "photo.jpg", "image/jpeg")
    assert response.status_code == 303, response.text
    configuration = await configuration_of(merchant.summary)
    asset = await BrandAsset.objects().where(BrandAsset.id == configuration.icon).first()
    stored = bytes(asset.data)
    assert stored != data
    assert b"SecretCam" not in stored
    assert b"Exif" not in stored
    assert b"eXIf" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "PNG"
        assert image.size == (300, 200)  # rotated upright, as the camera meant
        assert not image.getexif()
        assert "exif" not in image.info


def test_png_text_chunks_and_icc_profiles_are_not_kept():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    data = picture((128, 128), "PNG", pnginfo=info, icc_profile=b"fake-icc-profile")
    assert b"<script>" in data
    clean = images.reencode(data, "logo")
    assert b"<script>" not in clean.data
    assert b"iCCP" not in clean.data
    assert b"tEXt" not in clean.data
    assert clean.data != data


def test_large_images_are_scaled_down():
    clean = images.reencode(picture((2000, 500), "PNG"), "logo")
    assert (clean.width, clean.height) == (1024, 256)


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "message"),
    [
        (b"just some text\n" * 20, "notes.png", "image/png", "must be a PNG, JPEG or WebP image"),
        (picture((256, 256), "GIF", mode="RGB"), "a.gif", "image/gif", "PNG, JPEG or WebP"),
        (picture((64, 64)), "small.png", "image/png", "at least 128 by 128 pixels"),
        (picture((600, 100)), "wide.png", "image/png", "(this one is 600 by 100)"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "broken.png", "image/png", "PNG, JPEG or WebP"),
        (
            picture((6000, 6000), "PNG", mode="1"),
            "bomb.png",
            "image/png",
            "too many pixels",
        ),
    ],
    ids=["text-renamed-png", "gif", "64x64", "600x100", "truncated", "decompression-bomb"],
)
async def test_unacceptable_uploads_are_refused_with_a_message(
    merchant, data, filename, content_type, message
):
    await signed_in(merchant)
    before = await configuration_of(merchant.summary)
    response = await upload(merchant, "logo", data, filename, content_type)
    assert response.status_code == 422
    assert message in response.text
    assert 'id="logo-error"' in response.text
    assert '<a href="#logo">' in response.text
    after = await configuration_of(merchant.summary)
    assert after.logo == before.logo
    assert await BrandAsset.count() == 2  # only the demo's logo and icon
    assert await events("configuration.branding_updated") == []


async def test_a_600_kb_image_is_refused(merchant):
    await signed_in(merchant)
    data = noise(450)
    assert 580 * 1024 < len(data) < 1024 * 1024
    response = await upload(merchant, "icon", data, "big.png", "image/png")
    assert response.status_code == 422
    assert "must be 512 KB or smaller" in response.text
    assert 'id="icon-error"' in response.text


async def test_an_upload_over_one_megabyte_gets_the_message_beside_the_field(merchant):
    # Regression: the global 1 MiB body limit used to answer the bare 413 page, losing the form.
    await signed_in(merchant)
    response = await upload(merchant, "icon", b"x" * (1024 * 1024 + 10), "huge.png", "image/png")
    assert response.status_code == 422
    assert "must be 512 KB or smaller" in response.text
    assert 'id="icon-error"' in response.text


async def test_a_body_over_the_upload_route_limit_is_refused_before_parsing(merchant):
    await signed_in(merchant)
    response = await upload(
        merchant, "icon", b"x" * (8 * 1024 * 1024 + 10), "huge.png", "image/png"
    )
    assert response.status_code == 413


async def test_images_can_be_removed(merchant):
    await signed_in(merchant)
    response = await merchant.post(merchant.url("branding"), {**SAVED, "remove_logo": "1"})
    assert response.status_code == 303
    configuration = await configuration_of(merchant.summary)
    assert configuration.logo is None
    assert configuration.icon is not None
    [event] = await events("configuration.branding_updated")
    assert event["after"] == {"logo": None}


async def test_saving_without_new_files_keeps_the_images(merchant):
    await signed_in(merchant)
    before = await configuration_of(merchant.summary)
    response = await merchant.post(
        merchant.url("branding"),
        {**SAVED, "brand_color": "#0B5FFF"},
        files={"logo": ("", b"", "application/octet-stream")},
    )
    assert response.status_code == 303, response.text
    after = await configuration_of(merchant.summary)
    assert (after.logo, after.icon) == (before.logo, before.icon)
    assert after.brand_color == "#0b5fff"


# -- colours, font, corners ---------------------------------------------------------------------


async def test_colours_font_and_corners_are_saved_and_reach_customer_pages(merchant):
    await signed_in(merchant)
    values = {
        "brand_color": "#FFCC00",
        "accent_color": "#22c55e",
        "font": "serif",
        "corner_style": "pill",
    }
    response = await merchant.post(merchant.url("branding"), values)
    assert response.status_code == 303
    page = await merchant.client.get(merchant.url("branding"))
    assert "Branding saved." in page.text
    configuration = await configuration_of(merchant.summary)
    assert (configuration.brand_color, configuration.accent_color) == ("#ffcc00", "#22c55e")
    assert (configuration.font, configuration.corner_style) == ("serif", "pill")
    [event] = await events("configuration.branding_updated")
    assert event["actor_type"] == "merchant"
    assert event["before"] == SAVED
    assert event["after"] == {
        "brand_color": "#ffcc00",
        "accent_color": "#22c55e",
        "font": "serif",
        "corner_style": "pill",
    }
    login = await merchant.client.get(merchant.summary.login_path)
    [sheet] = re.findall(r'href="(/p/brand/[^"]+)"', login.text)
    css = (await merchant.client.get(sheet.replace("&amp;", "&"))).text
    assert "--brand:#ffcc00;" in css
    assert "--brand-ink:#8f7200;" in css  # darkened for links on white
    assert "--radius:999px;" in css
    assert "Georgia" in css


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("brand_color", "red", "Enter a colour as # and 6 hexadecimal digits"),
        ("brand_color", "#12345", "Enter a colour as # and 6 hexadecimal digits"),
        ("accent_color", "#12345g", "Enter a colour as # and 6 hexadecimal digits"),
        ("accent_color", "#123456;}body{", "Enter a colour as # and 6 hexadecimal digits"),
        ("font", "comic-sans", "Choose one of the fonts in the list."),
        ("corner_style", "blob", "Choose a corner style."),
    ],
)
async def test_invalid_branding_values_are_refused(merchant, field, value, message):
    await signed_in(merchant)
    response = await merchant.post(merchant.url("branding"), {**SAVED, field: value})
    assert response.status_code == 422
    assert message in response.text
    assert f'<a href="#{field}">' in response.text
    assert await events("configuration.branding_updated") == []


async def test_the_page_warns_when_a_colour_will_be_adjusted(merchant):
    await signed_in(merchant)
    await merchant.post(merchant.url("branding"), {**SAVED, "brand_color": "#ffcc00"})
    page = await merchant.client.get(merchant.url("branding"))
    assert "The brand colour #ffcc00 has a contrast of only 1.5:1 on white" in page.text
    assert "it will be darkened to #8f7200 for links and text" in page.text


def test_colour_notes():
    assert configurations.colour_notes("#4f46e5", "#0e7490") == []
    notes = configurations.colour_notes("#808080", "#22c55e")
    assert [note["field"] for note in notes] == ["brand_color", "brand_color", "accent_color"]
    assert "darkened to #767676" in notes[0]["message"]
    assert "#767676 will be used with white text" in notes[1]["message"]
    assert "The accent colour #22c55e has a contrast of only 2.2:1" in notes[2]["message"]
    # 4.47:1 is reported as 4.4, never as 4.5.
    assert "4.4:1" in configurations.colour_notes("#787878", "#0e7490")[0]["message"]


# -- preview ------------------------------------------------------------------------------------


async def test_the_preview_endpoint_with_htmx_returns_only_the_preview(merchant):
    await signed_in(merchant)
    values = {**SAVED, "brand_color": "#ffcc00", "font": "mono", "corner_style": "square"}
    response = await merchant.post(merchant.url("branding/preview"), values, htmx=True)
    assert response.status_code == 200
    html = response.text
    assert without_html(html)
    assert html.lstrip().startswith('<section id="brand-preview"')
    assert (
        'href="/merchant/branding-preview.css?brand_color=%23ffcc00&amp;accent_color=%230e7490'
        '&amp;font=mono&amp;corner_style=square"'
    ) in html
    assert "darkened to #8f7200" in html
    assert "Sign in to Acme Cloud" in html
    assert not re.search(r"\sstyle=", html)
    assert response.headers["vary"] == "HX-Request"
    configuration = await configuration_of(merchant.summary)
    assert configuration.brand_color == "#4f46e5"  # nothing saved
    assert await events("configuration.branding_updated") == []


async def test_the_preview_button_without_javascript_re_renders_the_page(merchant):
    await signed_in(merchant)
    values = {**SAVED, "brand_color": "#ffcc00", "accent_color": "#22c55e"}
    response = await merchant.post(merchant.url("branding/preview"), values)
    assert response.status_code == 200
    html = response.text
    assert "<!doctype html>" in html.lower()
    assert "The preview shows your changes, which are not saved yet." in html
    inputs = {attrs.get("id"): attrs for attrs in Elements(html).named("input")}
    assert inputs["brand_color"]["value"] == "#ffcc00"
    assert inputs["accent_color"]["value"] == "#22c55e"
    assert "brand_color=%23ffcc00" in html
    assert "The accent colour #22c55e has a contrast of only 2.2:1" in html
    configuration = await configuration_of(merchant.summary)
    assert configuration.brand_color == "#4f46e5"
    # Its URL in the address bar leads back to the page.
    again = await merchant.client.get(merchant.url("branding/preview"))
    assert again.status_code == 303
    assert again.headers["location"] == merchant.url("branding")


async def test_an_invalid_preview_shows_the_errors_and_the_saved_values(merchant):
    await signed_in(merchant)
    response = await merchant.post(
        merchant.url("branding/preview"), {**SAVED, "brand_color": "nope"}, htmx=True
    )
    assert response.status_code == 422
    assert "brand_color=%234f46e5" in response.text
    full = await merchant.post(merchant.url("branding/preview"), {**SAVED, "brand_color": "nope"})
    assert full.status_code == 422
    assert "Enter a colour as # and 6 hexadecimal digits" in full.text


async def test_the_preview_stylesheet(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(
        "/merchant/branding-preview.css",
        params={
            "brand_color": "#FFCC00",
            "accent_color": "#0e7490",
            "font": "mono",
            "corner_style": "square",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    css = response.text
    assert css.startswith(".m-preview{")
    assert "--brand:#ffcc00;" in css
    assert "--brand-ink:#8f7200;" in css
    assert "--radius:0;" in css
    assert "Menlo" in css
    hostile = await merchant.client.get(
        "/merchant/branding-preview.css",
        params={"brand_color": "red;}body{display:none", "font": "x;}", "corner_style": "}"},
    )
    assert "display:none" not in hostile.text
    assert "--brand:#1f4ed8;" in hostile.text
    assert hostile.text.count("{") == 1
    assert hostile.text.count("}") == 1
