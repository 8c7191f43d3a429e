"""Every piece of text on the subscriptions pages goes through gettext: rendered with a
pseudo-translation (every message wrapped in ⟦…⟧), only data is left outside the brackets."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import write_po

from app import i18n
from tests.helpers import JENNY, LEE
from tests.portal.subscriptions.support import LIST, price_id, subscription_of
from tests.portal.support import set_features, signed_in

# Merchant and customer data (names, amounts, dates, codes), which is not translated.
DATA = re.compile(
    r"^(Acme Cloud|Manage your Acme Cloud plan, payment details and invoices\."
    r"|Jenny Rosen|Lee Canceling|(Team|Starter|Business)( \u00d7 \d+)?"
    r"|WELCOME10 \u00b7 10% off your next invoice|\(?20% off for 3 months\)?|x+"
    r"|\d+ \u00d7 (Team|Starter|Business)( \(at .*\))?|Unused time on .*|Remaining time on .*"
    r"|[\w.+-]+@[\w.-]+|[\d\s:/.,()$\u00d7\u00b7\u2014\u2013-]+"
    r"|\d{1,2} [A-Z][a-z]{2} \d{4})$"
)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self._in_body = True
        if tag in ("script", "style", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "title"):
            self._skip -= 1

    def handle_data(self, data):
        if self._in_body and not self._skip and data.strip():
            self.texts.append(data.strip())


def untranslated(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    outside, depth = [], 0
    for text in parser.texts:
        depth += text.count("\u27e6") - text.count("\u27e7")
        if "\u27e6" in text or "\u27e7" in text or depth > 0 or DATA.match(text):
            continue
        outside.append(text)
    return outside


@pytest.fixture
def pseudo_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    extracted = i18n.extract()
    for message in extracted:
        if message.pluralizable:
            message.string = tuple(f"\u27e6{part}\u27e7" for part in message.id)
        elif message.id:
            message.string = f"\u27e6{message.id}\u27e7"
    target = tmp_path / "en" / "LC_MESSAGES"
    target.mkdir(parents=True)
    extracted.locale = "en"
    with (target / "messages.po").open("wb") as handle:
        write_po(handle, extracted)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    yield
    i18n.translations.cache_clear()


async def test_pages_have_no_untranslated_text(settings, demo, pseudo_locale) -> None:
    await set_features(demo, subscription_pause={"enabled": True})
    sub = await subscription_of(JENNY)
    base = f"{LIST}/{sub['id']}"
    team = await price_id("Team", "month")
    async with signed_in(settings, demo, JENNY) as jenny:
        pages = {
            "list": await jenny.get(LIST),
            "change": await jenny.get(f"{base}/change"),
            "preview": await jenny.post(
                f"{base}/preview", {"price": team, "quantity": "7", "promotion_code": "WELCOME10"}
            ),
            "change 422": await jenny.post(f"{base}/preview", {"price": team, "quantity": "0"}),
            "cancel": await jenny.get(f"{base}/cancel"),
            "cancel 422": await jenny.post(f"{base}/cancel/review", {"comment": "x" * 600}),
            "offer": await jenny.post(f"{base}/cancel/review", {"reason": "unused"}),
            "confirm": await jenny.post(f"{base}/cancel/review", {"reason": "unused"}),
            "pause": await jenny.get(f"{base}/pause"),
            "pause 422": await jenny.post(f"{base}/pause", {"mode": "date", "intent": "p" * 22}),
        }
    async with signed_in(settings, demo, LEE) as lee:
        pages["canceling list"] = await lee.get(LIST)
    found = {name: untranslated(response.text) for name, response in pages.items()}
    assert {name: response.status_code for name, response in pages.items()} == {
        name: 422 if "422" in name else 200 for name in pages
    }
    assert found == {name: [] for name in pages}
