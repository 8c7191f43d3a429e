"""The route table: ``(HTTP method, path template) -> (Params class, handler)``.

Each resource module registers its endpoints with :func:`route`, naming the ``stripe``
package's ``*Params`` TypedDict the SDK uses for that call (e.g. ``POST
/v1/subscriptions/{id}`` -> ``SubscriptionUpdateParams``).  The dispatcher validates the
decoded parameters against that class before the handler runs, and renders the handler's
return value with the request's ``expand[]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .state import State


@dataclass
class Context:
    """What a handler gets: the state, validated params and the path arguments."""

    state: State
    params: dict[str, Any]
    args: dict[str, str]
    method: str
    path: str
    expand: list[str] = field(default_factory=list)

    @property
    def now(self) -> int:
        return self.state.now()


Handler = Callable[[Context], Any]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    params: str
    handler: Handler
    pattern: re.Pattern[str]


ROUTES: list[Route] = []


def route(method: str, template: str, params: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``method template``; ``params`` names the SDK TypedDict."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method.upper(), template, params, handler, re.compile(f"^{regex}$")))
        # Literal segments ("/v1/invoices/create_preview") must win over "{invoice}".
        ROUTES.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        return handler

    return register


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for candidate in ROUTES:
        if candidate.method != method:
            continue
        found = candidate.pattern.match(path)
        if found:
            return candidate, found.groupdict()
    return None
