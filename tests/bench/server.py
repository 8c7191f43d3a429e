"""The server under test: the real application plus a bare Litestar plaintext endpoint (the
ceiling), served by uvicorn with ``portico serve``'s own options (``app.cli.uvicorn_options``).

``python -m tests.bench.server --port N [--workers W]`` does what ``portico serve`` does, with one
difference: ``/_bench/plaintext`` is answered by a separate, bare Litestar app in the same worker
processes, so the ceiling shares the server settings, the event loop and the process. This module
is bench-only: production never imports it, so the route does not exist there.
"""

from __future__ import annotations

import os

import click
from litestar import Litestar, MediaType, get
from litestar.types import ASGIApp, Receive, Scope, Send

from app import cli

CEILING_PATH = "/_bench/plaintext"


@get(CEILING_PATH, media_type=MediaType.TEXT)
async def plaintext() -> str:
    return "Hello, World!"


def with_ceiling(real: ASGIApp) -> ASGIApp:
    """``real`` (lifespan included), except ``/_bench/plaintext``, which a bare Litestar app
    answers."""
    ceiling = Litestar([plaintext], openapi_config=None, logging_config=None, debug=False)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CEILING_PATH:
            await ceiling(scope, receive, send)
            return
        await real(scope, receive, send)

    return app


@click.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, required=True)
@click.option("--workers", type=int, default=1)
def main(host: str, port: int, workers: int) -> None:
    """``portico serve`` (app/cli.py), with the ceiling mounted."""
    settings = cli._load()
    settings.require_secret_key()
    if not settings.log_format:
        os.environ["PORTICO_LOG_FORMAT"] = "json"
        settings = cli._load()
    import uvicorn

    options = cli.uvicorn_options(settings, host, port, workers)
    if workers > 1:
        uvicorn.run("tests.bench.asgi:app", **options)  # type: ignore[arg-type]
        return
    from app.factory import create_app

    uvicorn.run(with_ceiling(create_app(settings)), **options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
