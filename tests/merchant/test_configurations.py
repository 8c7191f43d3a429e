"""More than one configuration: the list, create, rename, make default, and each configuration's
own login link and settings pages."""

from __future__ import annotations

import json

import pytest

from app.audit.service import Actor
from app.configuration import editing
from app.configuration import features as feature_types
from app.configuration import service as configurations
from app.configuration.tables import PortalConfiguration
from tests.helpers import HX, JENNY, configuration_of, without_html
from tests.merchant.support import COOKIE, EMAIL, Elements, events, signed_in
from tests.test_i18n import _untranslated, pseudo_locale  # noqa: F401  (fixture)

LIST = "/merchant/configurations"


async def by_name(name: str) -> PortalConfiguration:
    found = await PortalConfiguration.objects().where(PortalConfiguration.name == name).first()
    assert found is not None, name
    return found


async def defaults() -> list[str]:
    rows = await PortalConfiguration.select(PortalConfiguration.id).where(
        PortalConfiguration.is_default.eq(True)
    )
    return [row["id"] for row in rows]


async def create(merchant, name: str) -> PortalConfiguration:
    response = await merchant.post(LIST, {"name": name})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == LIST
    return await by_name(" ".join(name.split()))


# -- access -------------------------------------------------------------------------------------


async def test_the_pages_need_a_merchant_session(merchant):
    for url in (LIST, f"{LIST}/{merchant.configuration_id}/name"):
        response = await merchant.client.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/merchant/sign-in?next=")
    for url in (LIST, f"{LIST}/{merchant.configuration_id}/name", f"{LIST}/x/make-default"):
        response = await merchant.post(url, {"name": "Hijacked"})
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/merchant/sign-in")
    assert await PortalConfiguration.count() == 1
    assert await events(editing.CREATED) == []


async def test_a_customer_session_is_refused(merchant):
    token = await merchant.portal.sign_in(JENNY)
    response = await merchant.client.get(LIST)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/merchant/sign-in")
    merchant.client.cookies.set(COOKIE, token, domain="portal.test")
    assert (await merchant.client.get(LIST)).status_code == 303
    assert (await merchant.post(LIST, {"name": "Hijacked"})).status_code == 303
    assert await PortalConfiguration.count() == 1


# -- the list -----------------------------------------------------------------------------------


async def test_the_list_shows_each_configuration_with_its_links(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(LIST)
    assert response.status_code == 200
    html = response.text
    assert "<title>Configurations \N{EN DASH} Portico</title>" in html
    assert 'aria-current="page">Configurations</a>' in html
    assert '<span class="mf-name">Default</span>' in html
    assert '<span class="status status--active">Default</span>' in html
    assert ">Make default" not in html  # the only one is the default
    hrefs = {a.get("href") for a in Elements(html).named("a")}
    for page in ("profile", "branding", "login-link", "features"):
        assert f"{LIST}/{merchant.configuration_id}/{page}" in hrefs
    assert f"{LIST}/{merchant.configuration_id}/name" in hrefs
    assert '<label class="field__label" for="name">Name</label>' in html
    assert ">Create configuration</button>" in html


# -- create -------------------------------------------------------------------------------------


async def test_create_a_configuration(merchant):
    await signed_in(merchant)
    default = await configuration_of(merchant.summary)
    created = await create(merchant, "  Enterprise   customers ")
    assert created.name == "Enterprise customers"
    assert created.is_default is False
    assert created.login_page_enabled is False
    assert created.login_page_token != default.login_page_token
    assert len(created.login_page_token) >= 32
    assert configurations.features(created) == feature_types.Features()
    for field in configurations.BRANDING_FIELDS:
        assert getattr(created, field) == getattr(default, field), field
    assert created.business_name == ""
    assert await defaults() == [default.id]

    page = await merchant.client.get(LIST)
    assert "Configuration “Enterprise customers” created." in page.text
    assert '<span class="mf-name">Enterprise customers</span>' in page.text
    assert f"{LIST}/{created.id}/make-default" in page.text
    [event] = await events(editing.CREATED)
    assert event["actor_type"] == "merchant"
    assert event["actor_email"] == EMAIL
    assert event["object_id"] == created.id
    assert event["after"] == {
        "name": "Enterprise customers",
        "is_default": False,
        "login_page_enabled": False,
        "branding_from": default.id,
    }
    # Its link is off until activated.
    assert (await merchant.client.get(configurations.login_path(created))).status_code == 404


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Enter a name for the configuration."),
        ("   ", "Enter a name for the configuration."),
        ("x" * 129, "The name must be 128 characters or fewer."),
        ("Bad\x00name", "cannot contain line breaks or control characters"),
        ("default", "Another configuration is already called that."),
    ],
)
async def test_create_validates_the_name(merchant, name, message):
    await signed_in(merchant)
    response = await merchant.post(LIST, {"name": name})
    assert response.status_code == 422
    assert "<title>Error: Configurations \N{EN DASH} Portico</title>" in response.text
    assert '<a href="#name">' in response.text
    assert 'id="name-error"' in response.text
    assert message in response.text
    assert await PortalConfiguration.count() == 1
    assert await events(editing.CREATED) == []


async def test_create_with_htmx(merchant):
    await signed_in(merchant)
    response = await merchant.post(LIST, {"name": "Partners"}, htmx=True)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Location"]) == {"path": LIST, "target": "#main-content"}
    fragment = await merchant.client.get(LIST, headers=HX)
    assert without_html(fragment.text)
    assert "Configuration “Partners” created." in fragment.text
    invalid = await merchant.post(LIST, {"name": ""}, htmx=True)
    assert invalid.status_code == 422
    assert without_html(invalid.text)
    assert "Enter a name for the configuration." in invalid.text


async def test_names_are_shown_as_text(merchant):
    await signed_in(merchant)
    name = '<script>alert(1)</script>"><img src=x>'
    created = await create(merchant, name)
    for url in (LIST, f"{LIST}/{created.id}/profile", f"{LIST}/{created.id}/features"):
        html = (await merchant.client.get(url)).text
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


# -- make default -------------------------------------------------------------------------------


async def test_make_default_leaves_exactly_one_default(merchant):
    await signed_in(merchant)
    old = merchant.configuration_id
    created = await create(merchant, "Enterprise")
    response = await merchant.post(f"{LIST}/{created.id}/make-default")
    assert response.status_code == 303
    assert response.headers["location"] == LIST
    assert await defaults() == [created.id]
    page = await merchant.client.get(LIST)
    assert "“Enterprise” is now the default configuration." in page.text
    assert f"{LIST}/{old}/make-default" in page.text
    assert f"{LIST}/{created.id}/make-default" not in page.text
    [event] = await events(editing.DEFAULT_CHANGED)
    assert event["before"] == {"default_configuration": old}
    assert event["after"] == {"default_configuration": created.id}
    # /merchant now leads to the new default.
    home = await merchant.client.get("/merchant")
    assert home.headers["location"] == f"{LIST}/{created.id}/profile"
    # Making the default the default again changes nothing.
    assert (await merchant.post(f"{LIST}/{created.id}/make-default")).status_code == 303
    assert len(await events(editing.DEFAULT_CHANGED)) == 1
    # With htmx, and back.
    response = await merchant.post(f"{LIST}/{old}/make-default", htmx=True)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Location"])["path"] == LIST
    assert await defaults() == [old]


async def test_make_default_of_an_unknown_configuration_is_not_found(merchant):
    await signed_in(merchant)
    assert (await merchant.post(f"{LIST}/bpc_nope/make-default")).status_code == 404
    assert await defaults() == [merchant.configuration_id]


async def test_make_default_is_one_transaction_even_when_racing(db, demo):
    import asyncio

    actor = Actor(type="merchant", id="macct_1", email=EMAIL)
    one = await editing.create("One", actor)
    two = await editing.create("Two", actor)
    await asyncio.gather(
        editing.make_default(one.id, actor),
        editing.make_default(two.id, actor),
        editing.make_default(demo.configuration_id, actor),
    )
    assert len(await defaults()) == 1


# -- rename -------------------------------------------------------------------------------------


async def test_rename(merchant):
    await signed_in(merchant)
    url = f"{LIST}/{merchant.configuration_id}/name"
    page = await merchant.client.get(url)
    assert page.status_code == 200
    assert 'value="Default"' in page.text
    assert ">Save name</button>" in page.text
    response = await merchant.post(url, {"name": "Everyone"})
    assert response.status_code == 303
    assert response.headers["location"] == LIST
    assert (await configuration_of(merchant.summary)).name == "Everyone"
    [event] = await events(editing.RENAMED)
    assert event["before"] == {"name": "Default"}
    assert event["after"] == {"name": "Everyone"}
    listing = await merchant.client.get(LIST)
    assert "Configuration renamed to “Everyone”." in listing.text
    # The same name again: nothing recorded.
    assert (await merchant.post(url, {"name": "Everyone"})).status_code == 303
    assert len(await events(editing.RENAMED)) == 1


async def test_rename_validates(merchant):
    await signed_in(merchant)
    await create(merchant, "Enterprise")
    url = f"{LIST}/{merchant.configuration_id}/name"
    response = await merchant.post(url, {"name": "ENTERPRISE"})
    assert response.status_code == 422
    assert "Another configuration is already called that." in response.text
    assert 'value="ENTERPRISE"' in response.text
    htmx = await merchant.post(url, {"name": ""}, htmx=True)
    assert htmx.status_code == 422
    assert without_html(htmx.text)
    assert "<title>Error: Rename configuration \N{EN DASH} Portico</title>" in htmx.text
    assert (await configuration_of(merchant.summary)).name == "Default"
    assert (await merchant.client.get(f"{LIST}/bpc_nope/name")).status_code == 404
    assert (await merchant.post(f"{LIST}/bpc_nope/name", {"name": "X"})).status_code == 404


# -- each configuration's own login link and settings --------------------------------------------


async def test_a_new_configuration_has_its_own_independent_login_link(merchant):
    await signed_in(merchant)
    default = await configuration_of(merchant.summary)
    created = await create(merchant, "Enterprise")
    new_path = configurations.login_path(created)
    old_path = configurations.login_path(default)

    # Every settings page of the new configuration is reachable, and says which one it is.
    for page in ("profile", "branding", "login-link", "features"):
        response = await merchant.client.get(f"{LIST}/{created.id}/{page}")
        assert response.status_code == 200, page
        assert "Configuration: Enterprise" in response.text

    response = await merchant.post(f"{LIST}/{created.id}/login-link/activate")
    assert response.status_code == 303
    assert (await merchant.client.get(new_path)).status_code == 200
    assert (await merchant.client.get(old_path)).status_code == 200

    # Turning the default's link off leaves the new one working, and the other way round.
    await merchant.post(f"{LIST}/{default.id}/login-link/deactivate")
    assert (await merchant.client.get(old_path)).status_code == 404
    assert (await merchant.client.get(new_path)).status_code == 200
    await merchant.post(f"{LIST}/{default.id}/login-link/activate")
    await merchant.post(f"{LIST}/{created.id}/login-link/rotate")
    assert (await merchant.client.get(new_path)).status_code == 404
    assert (await merchant.client.get(old_path)).status_code == 200
    rotated = configurations.login_path(await by_name("Enterprise"))

    # A customer who signs in through the new link gets the new configuration's features.
    merchant.portal.login_path = rotated
    await merchant.portal.sign_in(JENNY)
    assert (await merchant.client.get("/portal/invoices")).status_code == 200
    from tests.merchant.test_features import page_form, switched

    data = switched(
        await page_form(merchant, f"{LIST}/{created.id}/features"), "invoice_history", False
    )
    assert (await merchant.post(f"{LIST}/{created.id}/features", data)).status_code == 303
    assert (await merchant.client.get("/portal/invoices")).status_code == 404
    # The default configuration still shows invoices.
    assert configurations.features(await configuration_of(merchant.summary)).invoice_history.enabled


# -- text goes through gettext ------------------------------------------------------------------


async def test_the_pages_have_no_untranslated_text(merchant, pseudo_locale):  # noqa: F811
    await signed_in(merchant)
    await create(merchant, "Enterprise")
    names = {"Default", "Enterprise"}
    for url in (LIST, f"{LIST}/{merchant.configuration_id}/name"):
        response = await merchant.client.get(url)
        assert response.status_code == 200
        assert [t for t in _untranslated(response.text) if t not in names] == [], url
    invalid = await merchant.post(LIST, {"name": ""})
    assert [t for t in _untranslated(invalid.text) if t not in names] == []
