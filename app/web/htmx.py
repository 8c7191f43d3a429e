"""One place decides "full page or fragment", and how to answer after a POST.

- A fragment only for a plain htmx request: not boosted, not a history restore (those need the
  whole page). Every response says ``Vary: HX-Request`` so caches keep the two apart.
- Fragments are named blocks of the page template, named after the element id they replace.
"""

from __future__ import annotations

from typing import Any

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

VARY = {"Vary": "HX-Request"}


def wants_fragment(request: Request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


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
    """Render ``template`` whole, or only its ``{% block <fragment> %}`` for htmx."""
    all_headers = {**VARY, **(headers or {})}
    if wants_fragment(request):
        return HTMXBlockTemplate(
            template_name=template,
            block_name=fragment,
            context=context or {},
            status_code=status,
            push_url=push_url,
            headers=all_headers,
        )
    return Template(
        template_name=template, context=context or {}, status_code=status, headers=all_headers
    )


def see_other(request: Request, url: str) -> Response:
    """After a successful POST: 303 to ``url``; for htmx, ``HX-Redirect`` (a full navigation) so the
    next page arrives whole with its own URL, title and cookies."""
    if wants_fragment(request):
        return Response(content=b"", status_code=200, headers={**VARY, "HX-Redirect": url})
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER, headers=VARY)
