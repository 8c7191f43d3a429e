"""Form input: parse a submitted form into a msgspec struct, collect per-field messages.

A form struct declares its fields as the strings the browser sends and implements ``check()``,
returning ``{field: message}`` for every problem (an empty dict when valid). Controllers re-render
the same template with those messages, the submitted values and status 422.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from litestar import Request

from app.i18n import gettext as _

F = TypeVar("F", bound="Form")

# Pragmatic email check (the mail server is the final judge): one @, a dot in the domain, no spaces.
EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']+\.[^@\s<>\"']{2,}$")
MAX_FIELD = 1000


class Form(msgspec.Struct, kw_only=True):
    def check(self) -> dict[str, str]:
        return {}


class FormInput(msgspec.Struct, frozen=True):
    values: dict[str, str]
    errors: dict[str, str]


async def read_form(request: Request) -> dict[str, str]:
    """The submitted fields as single strings (the last value wins), CSRF token removed."""
    form = await request.form()
    data: dict[str, str] = {}
    for key, value in form.multi_items():
        if key == "_csrf_token" or not isinstance(value, str):
            continue
        data[key] = value
    return data


def parse(form_type: type[F], data: dict[str, Any]) -> tuple[F, dict[str, str]]:
    """Build ``form_type`` from ``data``; return it with its per-field messages."""
    too_long = {
        key: _("This is too long.")
        for key, value in data.items()
        if isinstance(value, str) and len(value) > MAX_FIELD
    }
    fields = {
        name: data.get(name, "")
        for name in form_type.__struct_fields__
        if isinstance(data.get(name, ""), str)
    }
    form = msgspec.convert(fields, form_type)
    errors = {**form.check(), **too_long}
    return form, errors


def normalise_email(value: str) -> str:
    return value.strip().lower()


def is_email(value: str) -> bool:
    return len(value) <= 254 and bool(EMAIL_RE.match(value))
