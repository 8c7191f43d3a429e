"""One place decides "full page or fragment", and how to answer after a POST.

- A fragment only for a plain htmx request: not boosted, not a history restore (those need the
  whole page), and only with a status htmx swaps into the page's target (2xx, 422, 429). Every
  other status is swapped into ``<body>`` by the htmx-config in ``base.html``, so it gets the
  whole page. Every response says ``Vary: HX-Request`` so caches keep the two apart.
- Fragments are named blocks of the page template, named after the element id they replace. The
  template sees ``as_fragment`` (True when only its block is sent).
"""

from __future__ import annotations

from typing import Any

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

VARY = {"Vary": "HX-Request"}
# The statuses htmx swaps into the request's target (see "responseHandling" in base.html).
FRAGMENT_STATUSES = frozenset({422, 429})


def wants_fragment(request: Request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def swaps_into_target(status: int) -> bool:
    return 200 <= status < 300 or status in FRAGMENT_STATUSES


def page(
    request: Request,
    template: str,
    *,
    fragment: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
    push_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> Template:
    """Render ``template`` whole, or only its ``{% block <fragment> %}`` for htmx (when htmx will
    swap it into the target)."""
    all_headers = {**VARY, **(headers or {})}
    as_fragment = wants_fragment(request) and swaps_into_target(status)
    full_context = {**(context or {}), "as_fragment": as_fragment}
    if as_fragment:
        return HTMXBlockTemplate(
            template_name=template,
            block_name=fragment,
            context=full_context,
            status_code=status,
            push_url=push_url,
            headers=all_headers,
        )
    return Template(
        template_name=template, context=full_context, status_code=status, headers=all_headers
    )


def see_other(request: Request, url: str) -> Response:
    """After a successful POST: 303 to ``url``; for htmx, ``HX-Redirect`` (a full navigation) so the
    next page arrives whole with its own URL, title and cookies."""
    if wants_fragment(request):
        return Response(content=b"", status_code=200, headers={**VARY, "HX-Redirect": url})
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER, headers=VARY)
