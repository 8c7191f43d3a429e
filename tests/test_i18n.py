"""Every user-facing string goes through gettext, and the English catalogue is complete."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from litestar.testing import AsyncTestClient

from app import i18n
from app.billing.demo import seed
from app.factory import create_app


def test_english_catalogue_has_every_message() -> None:
    extracted = i18n.extract()
    with (i18n.LOCALE_DIR / "en/LC_MESSAGES/messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale="en")
    missing = [m.id for m in extracted if m.id and m.id not in catalogue]
    assert not missing, "run `portico translations update`: " + repr(missing[:5])
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    assert not untranslated


def test_english_is_active_by_default() -> None:
    assert i18n.gettext("There is a problem") == "There is a problem"
    assert "1 try left" in i18n.ngettext(
        "That code is not right. You have %(n)d try left.",
        "That code is not right. You have %(n)d tries left.",
        1,
    ) % {"n": 1}


class _Text(HTMLParser):
    """Visible text nodes of <body>, outside <script>/<style>."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self._in_body = True
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if self._in_body and not self._skip and data.strip():
            self.texts.append(data.strip())


@pytest.fixture
def pseudo_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An English catalogue where every message is wrapped in ⟦…⟧, so untranslated text shows."""
    extracted = i18n.extract()
    for message in extracted:
        if message.pluralizable:
            message.string = tuple(f"⟦{part}⟧" for part in message.id)
        elif message.id:
            message.string = f"⟦{message.id}⟧"
    target = tmp_path / "en" / "LC_MESSAGES"
    target.mkdir(parents=True)
    extracted.locale = "en"
    with (target / "messages.po").open("wb") as handle:
        write_po(handle, extracted)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    yield
    i18n.translations.cache_clear()


# Merchant and customer data, which is not translated.
DATA = re.compile(
    r"^(Acme Cloud|Portico|Manage your Acme Cloud plan, payment details and invoices\."
    r"|[\w.+-]+@[\w.-]+|[\d\s:/.,$€£\u00d7\u00b7\u2014-]+)$"
)


def _untranslated(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    outside: list[str] = []
    depth = 0
    for text in parser.texts:
        # A translated message may be split into several text nodes by inline markup.
        depth += text.count("⟦") - text.count("⟧")
        if "⟦" in text or "⟧" in text or depth > 0 or DATA.match(text):
            continue
        outside.append(text)
    return outside


async def test_login_pages_have_no_untranslated_text(db, settings, pseudo_locale) -> None:
    summary = await seed()
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://portal.test") as client:
        page = await client.get(summary.login_path)
        assert page.status_code == 200
        assert _untranslated(page.text) == []
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        invalid = await client.post(summary.login_path, data={"_csrf_token": token, "email": "x"})
        assert invalid.status_code == 422
        assert _untranslated(invalid.text) == []
        sent = await client.post(
            summary.login_path,
            data={"_csrf_token": token, "email": "jenny.rosen@example.com"},
            follow_redirects=True,
        )
        assert sent.status_code == 200
        assert _untranslated(sent.text) == []
        missing = await client.get("/p/login/not-a-token")
        assert missing.status_code == 404
        assert _untranslated(missing.text) == []
