"""The business profile page: validation, saving, the activity log, and escaping on customer
pages."""

from __future__ import annotations

import json

import pytest

from app.configuration import service as configurations
from app.configuration.forms import ProfileForm, url_problem
from tests.helpers import HX, JENNY, configuration_of, without_html
from tests.merchant.support import EMAIL, Elements, events, signed_in

VALID = {
    "business_name": "Acme Cloud Ltd",
    "headline": "Billing for Acme Cloud customers",
    "privacy_policy_url": "https://acme.example.com/privacy",
    "terms_of_service_url": "https://acme.example.com/terms",
    "default_return_url": "https://acme.example.com/account",
}
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAKOUT = '"><img src=x onerror=alert(1)>'


async def test_the_page_shows_the_saved_profile_with_labelled_fields(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(merchant.url("profile"))
    assert response.status_code == 200
    html = response.text
    for field, label in (
        ("business_name", "Business name"),
        ("headline", "Headline"),
        ("privacy_policy_url", "Privacy policy URL"),
        ("terms_of_service_url", "Terms of service URL"),
        ("default_return_url", "Default return URL"),
    ):
        assert f'<label class="field__label" for="{field}">{label}</label>' in html
    assert 'value="Acme Cloud"' in html
    assert 'value="https://acme.example.com/legal/privacy"' in html
    assert ">Save</button>" in html
    assert 'aria-current="page">Business profile</a>' in html
    assert response.headers["cache-control"] == "no-store"


async def test_saving_stores_the_profile_and_records_before_and_after(merchant):
    await signed_in(merchant)
    response = await merchant.post(merchant.url("profile"), VALID)
    assert response.status_code == 303
    assert response.headers["location"] == merchant.url("profile")
    page = await merchant.client.get(merchant.url("profile"))
    assert "Business profile saved." in page.text
    assert 'role="status"' in page.text
    configuration = await configuration_of(merchant.summary)
    for name, value in VALID.items():
        assert getattr(configuration, name) == value
    [event] = await events("configuration.profile_updated")
    assert event["actor_type"] == "merchant"
    assert event["actor_email"] == EMAIL
    assert event["configuration"] == merchant.configuration_id
    assert event["object_id"] == merchant.configuration_id
    assert event["before"] == {
        "business_name": "Acme Cloud",
        "headline": "Manage your Acme Cloud plan, payment details and invoices.",
        "privacy_policy_url": "https://acme.example.com/legal/privacy",
        "terms_of_service_url": "https://acme.example.com/legal/terms",
    }
    assert event["after"] == {
        "business_name": "Acme Cloud Ltd",
        "headline": "Billing for Acme Cloud customers",
        "privacy_policy_url": "https://acme.example.com/privacy",
        "terms_of_service_url": "https://acme.example.com/terms",
    }
    # Saving the same values again changes nothing and records nothing.
    assert (await merchant.post(merchant.url("profile"), VALID)).status_code == 303
    assert len(await events("configuration.profile_updated")) == 1


async def test_saving_with_htmx_answers_with_hx_location(merchant):
    await signed_in(merchant)
    response = await merchant.post(merchant.url("profile"), VALID, htmx=True)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Location"]) == {
        "path": merchant.url("profile"),
        "target": "#main-content",
    }
    fragment = await merchant.client.get(merchant.url("profile"), headers=HX)
    assert without_html(fragment.text)
    assert "Business profile saved." in fragment.text
    assert "<title>Business profile \N{EN DASH} Portico</title>" in fragment.text


async def test_optional_fields_can_be_cleared(merchant):
    await signed_in(merchant)
    data = {**VALID, "headline": "", "privacy_policy_url": "", "terms_of_service_url": ""}
    assert (await merchant.post(merchant.url("profile"), data)).status_code == 303
    configuration = await configuration_of(merchant.summary)
    assert configuration.headline == ""
    assert configuration.privacy_policy_url == ""


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("business_name", "", "Enter your business name."),
        ("business_name", "   ", "Enter your business name."),
        ("business_name", "x" * 129, "Business name must be 128 characters or fewer."),
        ("business_name", "Acme\r\nBcc: x@example.com", "cannot contain line breaks"),
        ("headline", "x" * 257, "Headline must be 256 characters or fewer."),
        ("privacy_policy_url", "http://acme.example.com/privacy", "must start with https://"),
        ("privacy_policy_url", "javascript:alert(1)", "must start with https://"),
        ("terms_of_service_url", "ftp://acme.example.com/terms", "must start with https://"),
        ("terms_of_service_url", "acme.example.com/terms", "must start with https://"),
        ("default_return_url", "/account", "must start with https://"),
        ("default_return_url", "https://", "must start with https://"),
        ("default_return_url", "https://user:pw@acme.example.com/", "user name and password"),
        ("default_return_url", "https://acme.example.com/a b", "cannot contain spaces"),
        (
            "default_return_url",
            "https://acme.example.com/" + ATTRIBUTE_BREAKOUT,
            "cannot contain spaces, quotes or angle brackets",
        ),
        ("default_return_url", "https://acme.example.com/" + "a" * 2048, "2048 characters"),
    ],
)
async def test_each_field_is_validated_with_a_message_beside_it(merchant, field, value, message):
    await signed_in(merchant)
    response = await merchant.post(merchant.url("profile"), {**VALID, field: value})
    assert response.status_code == 422
    html = response.text
    assert "<title>Error: Business profile \N{EN DASH} Portico</title>" in html
    assert "There is a problem" in html
    assert f'<a href="#{field}">' in html
    assert f'id="{field}-error"' in html
    assert f'aria-describedby="{field}-hint {field}-error"' in html
    assert message in html
    assert SCRIPT not in html
    assert "<img src=x" not in html
    configuration = await configuration_of(merchant.summary)
    assert configuration.business_name == "Acme Cloud"  # nothing was saved
    assert await events("configuration.profile_updated") == []


async def test_invalid_input_with_htmx_re_renders_the_form_only(merchant):
    await signed_in(merchant)
    response = await merchant.post(
        merchant.url("profile"), {**VALID, "business_name": ""}, htmx=True
    )
    assert response.status_code == 422
    assert without_html(response.text)
    assert "<title>Error: Business profile \N{EN DASH} Portico</title>" in response.text
    assert "Enter your business name." in response.text
    assert 'value="Billing for Acme Cloud customers"' in response.text  # what was typed stays


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/account",
        "http://127.0.0.1/account",
        "http://[::1]:8080/",
        "https://acme.example.com",
        "https://billing.acme.example.com:8443/return?from=portal&x=%20y#top",
        "https://bücher.example/konto",
    ],
)
def test_accepted_urls(url):
    assert url_problem(url) is None


def test_the_form_strips_what_it_stores():
    form = ProfileForm(business_name="  Acme  ", default_return_url=" https://acme.example/ ")
    assert form.check() == {}
    assert form.cleaned()["business_name"] == "Acme"
    assert form.cleaned()["default_return_url"] == "https://acme.example/"


async def test_markup_typed_into_the_profile_is_inert_on_customer_pages(merchant):
    await signed_in(merchant)
    await merchant.portal.sign_in(JENNY)  # the same browser is a customer too
    # URL fields refuse anything that could break out of an attribute or run script.
    for field in ("privacy_policy_url", "terms_of_service_url", "default_return_url"):
        for payload in (SCRIPT, ATTRIBUTE_BREAKOUT, "javascript:alert(1)"):
            response = await merchant.post(merchant.url("profile"), {**VALID, field: payload})
            assert response.status_code == 422, (field, payload)
    # Text fields keep exactly what was typed, and it is only ever shown as text.
    for business_name, headline in (
        (SCRIPT, ATTRIBUTE_BREAKOUT),
        (ATTRIBUTE_BREAKOUT, SCRIPT),
    ):
        response = await merchant.post(
            merchant.url("profile"),
            {**VALID, "business_name": business_name, "headline": headline},
        )
        assert response.status_code == 303
        configuration = await configuration_of(merchant.summary)
        assert configuration.business_name == business_name
        assert configuration.headline == headline

        login = await merchant.client.get(merchant.summary.login_path)
        assert login.status_code == 200
        _assert_inert(login.text)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in login.text
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in login.text

        portal = await merchant.client.get("/portal")
        assert portal.status_code == 200
        _assert_inert(portal.text)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in portal.text

        branding = await merchant.client.get(merchant.url("branding"))
        _assert_inert(branding.text)


def _assert_inert(html: str) -> None:
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    elements = Elements(html)
    scripts = elements.named("script")
    assert all(script.get("src") for script in scripts)  # only htmx, from its URL
    assert elements.with_attribute("onerror") == []
    assert [img for img in elements.named("img") if img.get("src") == "x"] == []


async def test_the_customer_portal_shows_the_saved_links(merchant):
    await signed_in(merchant)
    await merchant.post(merchant.url("profile"), VALID)
    await merchant.portal.sign_in(JENNY)
    portal = await merchant.client.get("/portal")
    assert 'href="https://acme.example.com/privacy"' in portal.text
    assert 'href="https://acme.example.com/account"' in portal.text
    assert "Return to Acme Cloud Ltd" in portal.text


async def test_update_profile_service_ignores_unknown_fields_and_configurations(db, demo):
    from app.audit.service import Actor

    actor = Actor(type="merchant", id="macct_1", email=EMAIL)
    assert await configurations.update_profile("bpc_missing", VALID, actor) is None
    updated = await configurations.update_profile(
        demo.configuration_id, {"business_name": "New", "is_default": False}, actor
    )
    assert updated is not None
    assert updated.business_name == "New"
    assert updated.is_default is True
