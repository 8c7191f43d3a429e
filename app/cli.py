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


GRACEFUL_SHUTDOWN_SECONDS = 30
ASGI_APP = "app.asgi:app"  # what each worker process imports when --workers > 1


def uvicorn_options(settings: Settings, host: str, port: int, workers: int) -> dict[str, object]:
    """uvicorn's settings for ``portico serve`` (also used by the tests, so they check what runs).

    - Proxy headers (``X-Forwarded-For``/``-Proto``) are believed only from
      ``PORTICO_TRUSTED_PROXIES``; with none, they are switched off and the client address is the
      socket peer (uvicorn's own default would trust 127.0.0.1).
    - Logging: our ``dictConfig`` (JSON or text, secrets redacted) in every worker process;
      uvicorn's access log is off, ``portico.access`` writes one line per request instead.
    - On SIGTERM/SIGINT: stop accepting, let requests in flight finish for up to 30 s, then run the
      shutdown hooks (mail worker, database pool)."""
    from app import logging as app_logging

    trusted = settings.trusted_proxy_list
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(trusted) if trusted else "",
        "server_header": False,
        "date_header": True,
        "access_log": False,
        "log_config": app_logging.dict_config(settings.log_format or "json"),
        "log_level": "info",
        "lifespan": "on",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


@main.command(help="Run the server (production). Requires PORTICO_SECRET_KEY.")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1, max=64),
    help=(
        "Worker processes (more than 1: each imports app.asgi:app; per-address throttles are "
        "per process unless PORTICO_REDIS_URL is set)."
    ),
)
def serve(host: str, port: int, workers: int) -> None:
    import os

    settings = _load()
    try:
        settings.require_secret_key()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    if not settings.log_format:
        # serve logs JSON unless told otherwise; set in the environment so that worker processes
        # (which read their settings from it) agree.
        os.environ["PORTICO_LOG_FORMAT"] = "json"
        settings = _load()
    import uvicorn

    options = uvicorn_options(settings, host, port, workers)
    if workers > 1:
        uvicorn.run(ASGI_APP, **options)  # type: ignore[arg-type]
        return
    from app.factory import create_app

    uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]


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
    if env.billing == "stripe":
        # The demo's customers are made up: they must never land in a mirror of real Stripe data.
        raise click.ClickException(
            "PORTICO_BILLING: the demo seeds sandbox data; unset PORTICO_BILLING=stripe "
            "(with Stripe, use `portico stripe sync` and `portico serve`)"
        )
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
    email, password = asyncio.run(_demo_merchant(settings))
    click.echo(f"Merchant sign-in: {base}/merchant/sign-in ({email} / {password})")
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


def _demo_merchant_password(var_dir: Path) -> str:
    """The demo merchant's password: random, created once, kept in var/merchant_password."""
    path = var_dir / "merchant_password"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


async def _demo_merchant(settings: Settings) -> tuple[str, str]:
    from app import db
    from app.merchant import accounts

    password = _demo_merchant_password(Path(settings.var_dir))
    engine = db.make_engine(settings.resolved_database_url)
    db.bind(engine)
    await db.start(engine)
    try:
        account = await accounts.ensure_demo_account(password)
    finally:
        await db.stop(engine)
    return account.email, password


def _check_password(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from app.merchant import accounts

    problem = accounts.password_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


def _check_email(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from app.merchant import accounts

    problem = accounts.email_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value.strip().lower()


async def _create_admin(settings: Settings, email: str, password: str, reset: bool) -> str:
    from app import db
    from app.merchant import accounts
    from app.merchant.tables import MerchantAccount

    engine = db.make_engine(settings.resolved_database_url)
    db.bind(engine)
    await db.start(engine)
    try:
        if not await MerchantAccount.table_exists():
            raise click.ClickException("The database is not migrated: run `portico migrate`.")
        try:
            if reset:
                account = await accounts.set_password(email, password)
                return f"New password set for {account.email}; its sessions were ended."
            account = await accounts.create(email, password)
        except accounts.AccountError as error:
            raise click.ClickException(str(error)) from None
        return f"Merchant account created: {account.email}"
    finally:
        await db.stop(engine)


@main.command("create-admin", help="Create a merchant account for the settings pages.")
@click.option("--email", prompt="Email", callback=_check_email, help="The account's email address.")
@click.option(
    "--password",
    prompt="Password (at least 12 characters)",
    hide_input=True,
    confirmation_prompt=True,
    callback=_check_password,
    help="At least 12 characters. Prompted for (hidden) when left out.",
)
@click.option(
    "--reset-password",
    is_flag=True,
    help="Set a new password for an existing account instead (ends its sessions).",
)
def create_admin(email: str, password: str, reset_password: bool) -> None:
    settings = _load()
    click.echo(asyncio.run(_create_admin(settings, email, password, reset_password)))


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


def _register_stripe_commands() -> None:
    """``portico stripe sync`` / ``portico stripe reconcile`` (app.billing.stripe_cli)."""
    from app.billing.stripe_cli import stripe_group

    main.add_command(stripe_group)


_register_stripe_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
