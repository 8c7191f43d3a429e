"""Markup in every text a merchant or a customer can set is shown as text, never run: on every
page of the app (enumerated, with and without htmx), on 422 re-renders, in the passcode email;
and the activity CSV neutralises spreadsheet formulas.

The merchant's URL fields refuse script and attribute-breaking values outright
(tests/merchant/test_profile.py::test_markup_typed_into_the_profile_is_inert_on_customer_pages
covers them with the login and portal pages); this file covers every text field and every page.
"""

from __future__ import annotations

import csv
import io

from tests.helpers import JENNY, make_worker, smtp_for

from .world import FormReader, assert_inert, routes

SCRIPT = "<script>alert('s')</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
SVG = "'><svg onload=alert(2)>"
ESCAPED = {
    SCRIPT: "&lt;script&gt;alert(&#39;s&#39;)&lt;/script&gt;",
    ATTRIBUTE: "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
    SVG: "&#39;&gt;&lt;svg onload=alert(2)&gt;",
}
FORMULA = '=HYPERLINK("http://evil.example","x")'


async def _submit(w, page_url: str, action_suffix: str, **values: str):
    """Submit the form of ``page_url`` whose action ends with ``action_suffix``, as it stands
    with ``values`` typed in."""
    page = await w.client.get(page_url)
    assert page.status_code == 200, page_url
    [form] = [
        f
        for f in FormReader(page.text).forms
        if f.method == "post" and f.action.endswith(action_suffix)
    ]
    return await w.client.post(
        form.action,
        data=form.values(**values),
        files=form.files() or None,
        headers={"user-agent": FORMULA},
    )


def _route_url(w, name: str) -> str:
    [route] = [r for r in routes(w.app, "GET") if r.name == name]
    return w.url(route)


async def test_markup_is_inert_everywhere(route_world, smtp_server, fake_clock):
    w = route_world
    # --- the merchant's texts
    profile = _route_url(w, "merchant:profile")
    saved = await _submit(w, profile, "/profile", business_name=ATTRIBUTE, headline=SCRIPT)
    assert saved.status_code == 303, saved.text
    renamed = await _submit(w, _route_url(w, "merchant:configurations_name"), "/name", name=SVG)
    assert renamed.status_code == 303, renamed.text

    # --- the customer's texts
    details = _route_url(w, "details:edit")
    saved = await _submit(
        w,
        details,
        "/portal/details",
        name=SCRIPT,
        address_line1=ATTRIBUTE,
        address_line2=SVG,
        address_city=SCRIPT,
        address_state=ATTRIBUTE,
        address_postal_code="94107",
        address_country="US",
        shipping_name=SVG,
        shipping_address_line1=SCRIPT,
        shipping_address_line2=ATTRIBUTE,
        shipping_address_city=SVG,
        shipping_address_state=SCRIPT,
        shipping_address_postal_code="94107",
        shipping_address_country="US",
    )
    assert saved.status_code == 303, saved.text
    card = await _submit(
        w,
        _route_url(w, "payment_methods:new"),
        "/portal/payment-methods",
        number="4242 4242 4242 4242",
        expiry="12 / 39",
        cvc="123",
        name=ATTRIBUTE,
    )
    assert card.status_code == 303, card.text
    # A tax ID must fit its format: the payload is refused, and the form shown again is inert.
    for payload in (SCRIPT, ATTRIBUTE, SVG):
        refused = await _submit(w, details, "/tax-ids", tax_id_value=payload)
        assert refused.status_code == 422
        assert_inert(refused.text, "tax ID form")
        assert ESCAPED[payload] in refused.text
    # A cancellation comment (the merchant reads it on the cancellations page).
    review = await _submit(
        w, _route_url(w, "portal:subscription_cancel_form"), "/cancel/review", comment=SCRIPT
    )
    assert review.status_code == 200, review.text
    assert_inert(review.text, "cancel review")
    [confirm] = [f for f in FormReader(review.text).forms if f.action.endswith("/cancel")]
    canceled = await w.client.post(confirm.action, data=confirm.values())
    assert canceled.status_code == 303, canceled.text

    # --- every page shows them as text
    shown = {payload: 0 for payload in ESCAPED}
    for htmx in (False, True):
        for url, response in (await w.get_all(htmx=htmx)).items():
            if not response.headers.get("content-type", "").startswith("text/html"):
                continue
            assert_inert(response.text, url)
            for payload, escaped in ESCAPED.items():
                assert payload not in response.text, url
                shown[payload] += escaped in response.text
    assert all(count >= 5 for count in shown.values()), shown

    # --- and so does the passcode email (business name, customer name)
    fake_clock.advance(seconds=61)  # past the resend cooldown of her sign-in
    assert (await w.portal.request_code(JENNY)).status_code == 303
    settings = w.portal.settings
    await make_worker(settings, smtp_for(settings, "127.0.0.1", smtp_server.port)).deliver_due()
    [email] = smtp_server.inbox.to(JENNY)
    html = email.get_body(("html",)).get_content()
    assert_inert(html, "passcode email")
    assert ESCAPED[SCRIPT] in html  # her name
    assert ESCAPED[ATTRIBUTE] in html  # the business name

    # --- the activity export neutralises formulas (the user agent is the visitor's)
    export = await w.client.get(_route_url(w, "merchant:activity_export"))
    assert export.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(export.text)) for cell in row]
    assert FORMULA not in cells
    assert "'" + FORMULA in cells
