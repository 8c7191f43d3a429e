"""The login link page: on/off, rotation, and the prefilled-email link builder."""

from __future__ import annotations

import json

import pytest

from app.configuration import service as configurations
from tests.helpers import HX, configuration_of, without_html
from tests.merchant.support import Elements, events, signed_in


def _login_url(path: str) -> str:
    return f"http://portal.test{path}"


async def test_the_page_shows_the_full_link_in_a_read_only_field(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(merchant.url("login-link"))
    assert response.status_code == 200
    html = response.text
    assert '<label class="field__label" for="login_link">Login link</label>' in html
    inputs = {attrs.get("id"): attrs for attrs in Elements(html).named("input")}
    assert inputs["login_link"]["value"] == _login_url(merchant.summary.login_path)
    assert "readonly" in inputs["login_link"]
    assert ">Deactivate link</button>" in html
    assert ">Activate link</button>" not in html
    # Rotating asks first: a link to the confirmation page (a GET form without fields would
    # have sent the browser to ".../rotate?").
    rotate = f'<a class="button button--secondary" href="{merchant.url("login-link/rotate")}">'
    assert rotate + "Rotate link</a>" in html
    assert 'method="get"' not in html.split('id="rotate-title"', 1)[1].split("</section>", 1)[0]
    assert '<label class="field__label" for="email">Email</label>' in html


async def test_deactivate_and_activate(merchant):
    await signed_in(merchant)
    login_path = merchant.summary.login_path
    response = await merchant.post(merchant.url("login-link/deactivate"))
    assert response.status_code == 303
    assert response.headers["location"] == merchant.url("login-link")
    page = await merchant.client.get(merchant.url("login-link"))
    assert "The login link is off" in page.text
    assert ">Activate link</button>" in page.text
    assert ">Deactivate link</button>" not in page.text
    assert (await merchant.client.get(login_path)).status_code == 404
    assert (await merchant.client.get(f"{login_path}?prefilled_email=a%40b.co")).status_code == 404

    response = await merchant.post(merchant.url("login-link/activate"), htmx=True)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Location"])["path"] == merchant.url("login-link")
    fragment = await merchant.client.get(merchant.url("login-link"), headers=HX)
    assert without_html(fragment.text)
    assert "The login link is on" in fragment.text
    assert (await merchant.client.get(login_path)).status_code == 200

    [off] = await events("configuration.login_link_deactivated")
    [on] = await events("configuration.login_link_activated")
    assert off["before"] == {"login_page_enabled": True}
    assert off["after"] == {"login_page_enabled": False}
    assert on["after"] == {"login_page_enabled": True}
    assert on["actor_type"] == "merchant"


async def test_rotating_asks_first_then_the_old_link_stops_working(merchant):
    await signed_in(merchant)
    old_path = merchant.summary.login_path
    confirm = await merchant.client.get(merchant.url("login-link/rotate"))
    assert confirm.status_code == 200
    assert "Rotate the login link?" in confirm.text
    assert _login_url(old_path) in confirm.text
    assert ">Rotate link</button>" in confirm.text
    assert (await configuration_of(merchant.summary)).login_page_token in old_path  # not yet

    response = await merchant.post(merchant.url("login-link/rotate"))
    assert response.status_code == 303
    assert response.headers["location"] == merchant.url("login-link")
    configuration = await configuration_of(merchant.summary)
    new_path = configurations.login_path(configuration)
    assert new_path != old_path
    assert len(configuration.login_page_token) >= 32
    assert (await merchant.client.get(old_path)).status_code == 404
    assert (await merchant.client.get(new_path)).status_code == 200
    page = await merchant.client.get(merchant.url("login-link"))
    assert "The old link no longer works." in page.text
    assert _login_url(new_path) in page.text
    [event] = await events("configuration.login_link_rotated")
    old_token = old_path.rsplit("/", 1)[1]
    assert event["before"] == {
        "login_page_token_sha256": configurations.token_fingerprint(old_token)
    }
    assert event["after"] == {
        "login_page_token_sha256": configurations.token_fingerprint(configuration.login_page_token)
    }
    assert old_token not in json.dumps(event, default=str)  # the log keeps no usable token


async def test_a_customer_session_survives_rotation(merchant):
    from tests.helpers import JENNY

    await merchant.portal.sign_in(JENNY)
    await signed_in(merchant)
    assert (await merchant.post(merchant.url("login-link/rotate"))).status_code == 303
    assert (await merchant.client.get("/portal")).status_code == 200


@pytest.mark.parametrize(
    ("typed", "encoded", "shown"),
    [
        ("jenny+billing@example.com", "jenny%2Bbilling%40example.com", "jenny+billing@example.com"),
        ("Jenny.Rosen@Example.COM", "jenny.rosen%40example.com", "jenny.rosen@example.com"),
        (
            "  Pat.Trial+2024@Example.org ",
            "pat.trial%2B2024%40example.org",
            "pat.trial+2024@example.org",
        ),
    ],
)
async def test_the_prefill_builder_encodes_the_email(merchant, typed, encoded, shown):
    await signed_in(merchant)
    link = _login_url(merchant.summary.login_path) + f"?prefilled_email={encoded}"
    # Without JavaScript: a GET form, answered with the whole page.
    response = await merchant.client.get(
        merchant.url("login-link/prefill"), params={"email": typed}
    )
    assert response.status_code == 200
    inputs = {attrs.get("id"): attrs for attrs in Elements(response.text).named("input")}
    assert inputs["prefilled_link"]["value"] == link
    assert inputs["email"]["value"] == typed
    assert '<label class="field__label" for="prefilled_link">Prefilled link</label>' in (
        response.text
    )
    # With htmx: only the result.
    fragment = await merchant.client.get(
        merchant.url("login-link/prefill"), params={"email": typed}, headers=HX
    )
    assert fragment.status_code == 200
    assert without_html(fragment.text)
    assert fragment.text.lstrip().startswith('<div id="prefill-result"')
    assert link.replace("&", "&amp;") in fragment.text
    # The link fills the customer's login form with the address.
    login = await merchant.client.get(link.removeprefix("http://portal.test"))
    assert f'value="{shown}"' in login.text


async def test_the_prefill_builder_explains_an_invalid_email(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(
        merchant.url("login-link/prefill"), params={"email": "jenny@"}
    )
    assert response.status_code == 422
    assert "Enter an email address like name@example.com." in response.text
    assert "<title>Error: Login link \N{EN DASH} Portico</title>" in response.text
    assert 'id="prefilled_link"' not in response.text
    fragment = await merchant.client.get(
        merchant.url("login-link/prefill"), params={"email": "jenny@"}, headers=HX
    )
    assert fragment.status_code == 422
    assert "Enter a complete email address" in fragment.text
    empty = await merchant.client.get(merchant.url("login-link/prefill"), params={"email": ""})
    assert empty.status_code == 200
    assert 'id="prefilled_link"' not in empty.text


async def test_an_unknown_configuration_is_not_found(merchant):
    await signed_in(merchant)
    assert (
        await merchant.client.get("/merchant/configurations/bpc_nope/login-link")
    ).status_code == 404
    response = await merchant.post("/merchant/configurations/bpc_nope/login-link/rotate")
    assert response.status_code == 404


async def test_merchant_home_creates_a_default_configuration_on_a_fresh_install(
    settings, db, account
):
    from app.billing.demo import DemoSummary
    from app.configuration.tables import PortalConfiguration
    from tests.merchant.support import open_merchant

    summary = DemoSummary(
        login_path="/p/login/none",
        configuration_id="",
        business_name="",
        customer_emails=[],
        created=False,
    )
    async with open_merchant(settings, summary) as merchant:
        await signed_in(merchant)
        response = await merchant.client.get("/merchant")
        assert response.status_code == 303
        configuration = await PortalConfiguration.objects().first()
        assert configuration.is_default
        assert configuration.login_page_enabled is False
        assert response.headers["location"] == (
            f"/merchant/configurations/{configuration.id}/profile"
        )
        again = await merchant.client.get("/merchant")
        assert again.headers["location"] == response.headers["location"]
        assert await PortalConfiguration.count() == 1
        assert (
            await merchant.client.get(configurations.login_path(configuration))
        ).status_code == 404
        [event] = await events("configuration.created")
        assert event["actor_type"] == "merchant"
