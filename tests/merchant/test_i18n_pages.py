"""Every piece of text on the merchant pages goes through gettext (pseudo-locale check)."""

from __future__ import annotations

import re

from tests.merchant.support import signed_in
from tests.test_i18n import _untranslated, pseudo_locale  # noqa: F401  (fixture)

# Data shown on the pages: URLs, colours, the preview's sample amount.
DATA = re.compile(r"^(https?://\S+|#[0-9a-f]{6}|Team · \$50\.00)$")


def _untranslated_text(html: str) -> list[str]:
    return [text for text in _untranslated(html) if not DATA.match(text)]


async def test_merchant_pages_have_no_untranslated_text(merchant, pseudo_locale):  # noqa: F811
    sign_in = await merchant.client.get("/merchant/sign-in?reason=expired")
    assert _untranslated_text(sign_in.text) == []
    refused = await merchant.sign_in(password="wrong password!")
    assert refused.status_code == 422
    assert _untranslated_text(refused.text) == []
    await signed_in(merchant)
    for page in ("profile", "branding", "login-link", "login-link/rotate"):
        response = await merchant.client.get(merchant.url(page))
        assert response.status_code == 200, page
        assert _untranslated_text(response.text) == [], page
    invalid = await merchant.post(merchant.url("profile"), {"business_name": ""})
    assert invalid.status_code == 422
    assert _untranslated_text(invalid.text) == []
    preview = await merchant.post(
        merchant.url("branding/preview"),
        {"brand_color": "#ffcc00", "accent_color": "#22c55e", "font": "x", "corner_style": "y"},
    )
    assert _untranslated_text(preview.text) == []
    prefill = await merchant.client.get(
        merchant.url("login-link/prefill"), params={"email": "a+b@example.com"}
    )
    assert _untranslated_text(prefill.text) == []
