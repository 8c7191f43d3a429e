"""The customers page: which customer an email address signs in as and why, and search."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from app import db
from app.billing.queries import explain_choice
from app.billing.tables import Customer
from app.merchant import customer_lookup
from tests.helpers import HX, JENNY, NOBODY, SAM, without_html
from tests.merchant.support import COOKIE, Elements, signed_in
from tests.test_i18n import _untranslated, pseudo_locale  # noqa: F401  (fixture)

URL = "/merchant/customers"


async def test_the_page_needs_a_merchant_session(merchant):
    response = await merchant.client.get(URL, params={"email": SAM})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/merchant/sign-in?next=/merchant/customers")
    response = await merchant.client.get(URL, headers=HX)
    assert response.headers["HX-Redirect"].startswith("/merchant/sign-in")
    assert "Sam Older" not in response.text


async def test_a_customer_session_is_refused(merchant):
    token = await merchant.portal.sign_in(JENNY)
    response = await merchant.client.get(URL, params={"email": SAM})
    assert response.status_code == 303
    assert "Sam Older" not in response.text
    merchant.client.cookies.set(COOKIE, token, domain="portal.test")
    response = await merchant.client.get(URL, params={"email": SAM})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/merchant/sign-in")


async def test_the_search_form(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(URL)
    assert response.status_code == 200
    html = response.text
    assert "<title>Customers \N{EN DASH} Portico</title>" in html
    assert 'aria-current="page">Customers</a>' in html
    assert '<label class="field__label" for="email">Email</label>' in html
    assert ">Search</button>" in html
    [form] = [f for f in Elements(html).named("form") if f.get("action") == URL]
    assert form["method"] == "get"
    assert form["hx-get"] == URL
    assert form["hx-push-url"] == "true"


async def test_sam_older_is_chosen_for_the_shared_email_with_the_reason(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(URL, params={"email": "  Sam.Shared@Example.COM "})
    assert response.status_code == 200
    html = response.text
    assert "Customers with the email address sam.shared@example.com" in html
    assert "Signing in with sam.shared@example.com opens Sam Older" in html
    assert "Chosen: the newest customer with an active subscription (active)." in html
    assert "Not chosen: no active subscription, and another customer has one." in html
    assert "Several customers share this email address." in html
    # Sam Older's card is the chosen one and lists the subscription: plan, status, period end.
    older = html.index("Sam Older <span")
    newer = html.index("Sam Newer <span")
    chosen_card = html[older:newer] if older < newer else html[older:]
    assert "Chosen at sign-in" in chosen_card
    assert "Starter" in chosen_card
    assert "$9.00 / month" in chosen_card
    assert '<span class="status status--active">Active</span>' in chosen_card
    assert "Current period ends" in chosen_card
    assert "No subscriptions." in html[newer:]  # Sam Newer only has an invoice
    # The value typed stays in the field.
    inputs = {a.get("id"): a for a in Elements(html).named("input")}
    assert inputs["email"]["value"] == "  Sam.Shared@Example.COM "


async def test_an_unknown_email_has_no_customer(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(URL, params={"email": NOBODY})
    assert response.status_code == 200
    assert "There is no customer with this email address." in response.text
    assert "Chosen" not in response.text


async def test_a_single_customer_is_chosen_without_the_shared_email_note(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(URL, params={"email": JENNY})
    assert "Signing in with jenny.rosen@example.com opens Jenny Rosen" in response.text
    assert "Several customers share" not in response.text
    assert "5 \N{MULTIPLICATION SIGN} Team" in response.text


async def test_with_htmx_only_the_main_content_comes_back(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(URL, params={"email": SAM}, headers=HX)
    assert response.status_code == 200
    assert without_html(response.text)
    assert "Sam Older" in response.text
    assert "<title>Customers \N{EN DASH} Portico</title>" in response.text
    assert response.headers["vary"] == "HX-Request"
    full = await merchant.client.get(URL, params={"email": SAM})
    assert "<!doctype html>" in full.text.lower()


async def test_prefix_search_on_email_and_name(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(URL, params={"email": "SAM.sh"})
    assert response.status_code == 200
    html = response.text
    assert "Customers starting with “SAM.sh”" in html
    hrefs = [a.get("href") for a in Elements(html).named("a")]
    assert hrefs.count(f"{URL}?email=sam.shared%40example.com") == 2  # Sam Older and Newer
    assert "Sam Older" in html
    assert "Sam Newer" in html
    by_word = await merchant.client.get(URL, params={"email": "newer"})
    assert "Sam Newer" in by_word.text
    assert "Sam Older" not in by_word.text
    none = await merchant.client.get(URL, params={"email": "zz-nobody"})
    assert "There is no customer whose email address or name starts with this." in none.text


async def test_like_wildcards_are_searched_literally(merchant):
    await signed_in(merchant)
    for text in ("%", "_%", "%@example", "\\%"):
        response = await merchant.client.get(URL, params={"email": text + "x"})
        assert response.status_code == 200, text
        assert "There is no customer whose email address or name starts with" in response.text


async def test_a_one_letter_search_asks_for_more(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(URL, params={"email": "s"})
    assert response.status_code == 422
    assert '<a href="#email">' in response.text
    assert "Enter at least 2 characters" in response.text
    assert "<title>Error: Customers \N{EN DASH} Portico</title>" in response.text
    fragment = await merchant.client.get(URL, params={"email": "s"}, headers=HX)
    assert fragment.status_code == 422
    assert without_html(fragment.text)


async def test_everything_is_escaped_and_links_stay_here(merchant):
    await signed_in(merchant)
    evil_email = 'evil"><script>alert(1)</script>@example.com'
    async with db.write():
        await Customer.insert(
            Customer(
                id="cus_evil",
                name="<img src=x onerror=alert(1)>",
                email=evil_email,
                metadata={},
            )
        )
    for params in ({"email": "evil"}, {"email": "<img"}, {"email": '"><script>alert(1)</script>'}):
        response = await merchant.client.get(URL, params=params)
        html = response.text
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        elements = Elements(html)
        assert elements.with_attribute("onerror") == []
        for a in elements.named("a"):
            href = a.get("href") or ""
            assert href == "#main-content" or href.startswith("/"), href
            assert not href.startswith("//"), href
    listing = await merchant.client.get(URL, params={"email": "evil"})
    hrefs = [a.get("href") for a in Elements(listing.text).named("a")]
    assert f"{URL}?{urlencode({'email': evil_email})}" in hrefs
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing.text


async def test_every_reason_is_translated(demo):
    emails = [*demo.customer_emails, SAM, "lee.canceling@example.com", "max.noplan@example.com"]
    for email in emails:
        for _customer, reason in await explain_choice(email):
            assert reason in customer_lookup._FIXED or any(
                pattern.match(reason) for pattern, _message in customer_lookup._WITH_STATUSES
            ), reason


@pytest.mark.parametrize("text", ["", "   "])
async def test_search_service_ignores_empty_text(db, text):
    result = await customer_lookup.search(text)
    assert result.matches == []
    assert result.more is False


async def test_the_page_has_no_untranslated_text(merchant, pseudo_locale):  # noqa: F811
    await signed_in(merchant)
    data = {"Sam Older", "Sam Newer", "Default", "·"}
    date = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}$")
    for params in ({}, {"email": SAM}, {"email": NOBODY}, {"email": "sam"}, {"email": "s"}):
        response = await merchant.client.get(URL, params=params)
        leftover = [
            text
            for text in _untranslated(response.text)
            if text not in data
            and not date.match(text)
            and not text.startswith(("cus_", "sub_"))
            and not text.startswith("· ")
        ]
        assert leftover == [], params
