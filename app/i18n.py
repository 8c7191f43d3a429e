"""Translations: every user-facing string goes through ``gettext``.

Catalogues live in ``app/locale/<lang>/LC_MESSAGES/messages.po`` and are compiled in memory at
start-up (no build step). Templates use Jinja's i18n extension (``{% trans %}``, ``_()``);
Python code uses ``gettext``/``ngettext`` from this module (they follow the request's locale).
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LOCALE = "en"

_active: ContextVar[str] = ContextVar("portico_locale", default=DEFAULT_LOCALE)


def available_locales() -> list[str]:
    return sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES/messages.po").exists())


@cache
def translations(locale: str) -> NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def activate(locale: str) -> None:
    _active.set(locale if locale in available_locales() else DEFAULT_LOCALE)


def gettext(message: str) -> str:
    return translations(_active.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_active.get()).ngettext(singular, plural, n)


_ = gettext
