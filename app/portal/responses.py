"""How portal actions answer.

- Success: the flash message goes into the session, then no-JS gets ``303`` to the next page and
  htmx gets ``HX-Location`` (an ajax GET of that page whose ``main_content`` fragment replaces
  ``#main-content`` and whose URL is pushed), so both paths end on the same URL showing the same
  message.
- Invalid input: the caller re-renders its form with ``page(..., status=422)``.
"""

from __future__ import annotations

import json

from litestar import Request, Response

from app.login import sessions
from app.portal.access import CustomerAccess
from app.web.htmx import VARY, see_other, wants_fragment


async def done(
    request: Request, access: CustomerAccess, url: str, message: str, level: str = "success"
) -> Response:
    await sessions.push_flash(access.session, message, level)
    if wants_fragment(request):
        location = json.dumps({"path": url, "target": "#main-content"})
        return Response(content=b"", status_code=200, headers={**VARY, "HX-Location": location})
    return see_other(request, url)
