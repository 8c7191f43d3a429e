"""Probes for load balancers and orchestrators.

- ``GET /healthz``: the process is up and answering (200 ``ok``); touches nothing else, so a
  slow database never gets a healthy process restarted.
- ``GET /readyz``: the database answers ``SELECT 1`` within 2 seconds (200), else 503; both with
  a small JSON body. Take an instance out of rotation on 503, do not restart it.

No session, no CSRF cookie (GET only), ``Cache-Control: no-store``; the security headers are added
like on every response. The access log writes these at DEBUG level (``app.logging.QUIET_PATHS``).
"""

from __future__ import annotations

import asyncio
import logging

from litestar import MediaType, Response, get

from app import db

log = logging.getLogger("portico.health")

READY_TIMEOUT = 2.0  # seconds
NO_STORE = {"cache-control": "no-store"}
# GET only, so CSRF has nothing to check; excluded so that probes get no CSRF cookie either.
OPT = {"exclude_from_csrf": True}


@get("/healthz", name="health:live", include_in_schema=False, opt=OPT)
async def healthz() -> Response:
    return Response(content="ok", media_type=MediaType.TEXT, headers=NO_STORE)


async def ping_database() -> None:
    """``SELECT 1`` on the bound engine (PostgreSQL: from the pool; SQLite: a new connection)."""
    rows = await db.current().run_ddl("SELECT 1")
    if not rows or next(iter(rows[0].values())) != 1:
        raise RuntimeError("SELECT 1 did not return 1")


@get("/readyz", name="health:ready", include_in_schema=False, opt=OPT)
async def readyz() -> Response:
    problem = ""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await ping_database()
    except TimeoutError:
        problem = "timeout"
        log.warning("readiness: the database did not answer within %.1f s", READY_TIMEOUT)
    except Exception as error:  # any failure means "not ready"; the reason goes to the log only
        problem = "unavailable"
        log.warning("readiness: the database check failed (%s)", type(error).__name__)
    if problem:
        return Response(
            content={"status": "unavailable", "database": problem},
            status_code=503,
            media_type=MediaType.JSON,
            headers=NO_STORE,
        )
    return Response(
        content={"status": "ok", "database": "ok"}, media_type=MediaType.JSON, headers=NO_STORE
    )


HANDLERS = [healthz, readyz]
