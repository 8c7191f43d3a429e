"""The ``portico`` command."""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import click

from app.settings import Settings, SettingsError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _load(**overrides: object) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


async def _migrate(settings: Settings) -> None:
    from app import db

    engine = db.make_engine(settings.resolved_database_url)
    await db.start(engine)
    try:
        await db.migrate(engine)
    finally:
        await db.stop(engine)


def _quiet_migrate(settings: Settings) -> None:
    """Piccolo prints a line per migration; the demo keeps its output to the lines that matter."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        asyncio.run(_migrate(settings))


@click.group(help="Portico: a self-hosted, no-code customer billing portal.")
def main() -> None:
    pass


@main.command(help="Apply pending database migrations (PORTICO_DATABASE_URL).")
def migrate() -> None:
    settings = _load()
    asyncio.run(_migrate(settings))
    click.echo("Database is up to date.")


@main.command(help="Run the server (production). Requires PORTICO_SECRET_KEY.")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on."
)
def serve(host: str, port: int) -> None:
    settings = _load()
    try:
        settings.require_secret_key()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    import uvicorn

    from app.factory import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=False,
        server_header=False,
        log_level="info",
        timeout_graceful_shutdown=30,
    )


def _demo_secret(var_dir: Path) -> str:
    """The demo's secret key: created once, kept in var/secret_key (mode 600)."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


@main.command(help="Seed sandbox data and run the demo with a built-in mail catcher.")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on."
)
@click.option(
    "--seed-only", is_flag=True, help="Migrate and seed the database, print the links, exit."
)
def demo(host: str, port: int, seed_only: bool) -> None:
    env = _load()
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    overrides: dict[str, object] = {"mail_catcher": True}
    if not env.secret_key:
        overrides["secret_key"] = _demo_secret(Path(env.var_dir))
    import os

    if not os.environ.get("PORTICO_BASE_URL"):
        overrides["base_url"] = f"http://{shown_host}:{port}"
    settings = _load(**overrides)

    _quiet_migrate(settings)
    summary = asyncio.run(_seed(settings))
    base = settings.base_url.rstrip("/")
    click.echo(f"Login link: {base}{summary.login_path}")
    if settings.smtp_host:
        click.echo(f"Mail inbox: delivered to {settings.smtp_host}:{settings.smtp_port}")
    else:
        click.echo(f"Mail inbox: {base}/_dev/mail")
    if seed_only:
        return
    sys.stdout.flush()
    import uvicorn

    from app.factory import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )


@main.group(help="Translation catalogues (app/locale).")
def translations() -> None:
    pass


@translations.command("update", help="Extract messages and update every catalogue.")
def translations_update() -> None:
    from app.i18n import update_catalogues

    for path in update_catalogues():
        click.echo(f"wrote {path}")


async def _seed(settings: Settings):
    from app import db
    from app.billing import demo as demo_data

    engine = db.make_engine(settings.resolved_database_url)
    db.bind(engine)
    await db.start(engine)
    try:
        return await demo_data.seed()
    finally:
        await db.stop(engine)


if __name__ == "__main__":  # pragma: no cover
    main()
