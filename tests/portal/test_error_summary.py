"""After a 422, focus moves to the error summary (``templates/macros/forms.html``)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import JENNY, MAX
from tests.portal.subscriptions.support import subscription_of
from tests.portal.support import signed_in

CARD = {"number": "4242", "expiry": "12 / 34", "cvc": "123", "intent": "k" * 22}
INVALID = {
    "subscription choice": (JENNY, "/portal/subscriptions/{sub}/preview", {"price": ""}),
    "card": (MAX, "/portal/payment-methods", CARD),
    "details": (JENNY, "/portal/details", {"phone": "phone me", "intent": "k" * 22}),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
@pytest.mark.parametrize("name", list(INVALID))
async def test_focus_goes_to_the_error_summary(settings, demo, name, htmx) -> None:
    """On a 422 page the error summary has ``autofocus`` and comes before any other autofocus
    (browsers and htmx focus the first), so focus moves to it (GOV.UK pattern)."""
    email, url, data = INVALID[name]
    async with signed_in(settings, demo, email) as client:
        url = url.format(sub=(await subscription_of(JENNY))["id"])
        answer = await client.post(url, data, htmx=htmx)
    assert answer.status_code == 422, answer.text
    focused = re.findall(r"<[^>]*\sautofocus[\s>]", answer.text)
    assert len(focused) == 1
    assert 'class="error-summary"' in focused[0]
