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


# -- catalogue maintenance (``portico translations``) -----------------------------------------
EXTRACT_METHODS = [
    ("app/**.py", "python"),
    ("templates/**.html", "jinja2"),
    ("templates/**.txt", "jinja2"),
]
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "false"}


def extract():
    """Every translatable message in the code and templates, as a Babel catalogue."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    from app.settings import PROJECT_ROOT

    catalog = Catalog(project="portico", charset="utf-8")
    options = {"templates/**.html": JINJA_OPTIONS, "templates/**.txt": JINJA_OPTIONS}
    for filename, lineno, message, comments, context in extract_from_dir(
        PROJECT_ROOT,
        EXTRACT_METHODS,
        options,
        keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def update_catalogues() -> list[Path]:
    """Write ``messages.pot`` and merge it into every language (English is filled from the ids)."""
    from babel.messages.pofile import write_po

    template = extract()
    written = []
    pot = LOCALE_DIR / "messages.pot"
    with pot.open("wb") as handle:
        write_po(handle, template, omit_header=False, sort_output=True, width=100)
    written.append(pot)
    for locale in [*available_locales(), *([] if "en" in available_locales() else ["en"])]:
        po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
        po.parent.mkdir(parents=True, exist_ok=True)
        if po.exists():
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            catalog.update(template, no_fuzzy_matching=True)
        else:
            from babel.messages.catalog import Catalog

            catalog = Catalog(locale=locale, project="portico", charset="utf-8")
            catalog.update(template)
        if locale == "en":
            for message in catalog:
                if message.id and not any(
                    message.string if message.pluralizable else [message.string]
                ):
                    message.string = message.id
        with po.open("wb") as handle:
            write_po(handle, catalog, sort_output=True, width=100, ignore_obsolete=True)
        written.append(po)
    translations.cache_clear()
    return written
