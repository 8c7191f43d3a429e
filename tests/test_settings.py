"""Settings from the environment, and the ``portico`` console script."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from app.settings import HTMX_CDN_URL, Settings, SettingsError

PORTICO = Path(sys.executable).parent / "portico"
GOOD_KEY = "k" * 32


def test_defaults():
    settings = Settings.from_env({})
    assert settings.database_url == ""
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.resolved_database_url.endswith("portico.sqlite3")
    assert settings.secret_key == ""
    assert settings.base_url == "http://127.0.0.1:8000"
    assert not settings.is_https
    assert settings.host == "127.0.0.1"
    assert settings.smtp_port == 25
    assert settings.smtp_security == "none"
    assert settings.billing == "sandbox"
    assert settings.htmx_url == HTMX_CDN_URL
    assert settings.run_mail_worker is True
    assert settings.mail_catcher is False


def test_values_are_read_and_converted():
    settings = Settings.from_env(
        {
            "PORTICO_SMTP_PORT": "2525",
            "PORTICO_SMTP_SECURITY": "starttls",
            "PORTICO_BASE_URL": "https://billing.example.com",
            "PORTICO_SECRET_KEY": GOOD_KEY,
            "PORTICO_DATABASE_URL": "postgresql://u@db/portico",
            "PORTICO_REDIS_URL": "redis://localhost:6379/0",
            "PORTICO_SMTP_HOST": "",  # empty means unset
            "OTHER": "ignored",
        }
    )
    assert settings.smtp_port == 2525
    assert settings.smtp_security == "starttls"
    assert settings.is_https
    assert settings.host == "billing.example.com"
    assert settings.resolved_database_url == "postgresql://u@db/portico"
    assert settings.smtp_host == ""


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORTICO_SMTP_PORT": "abc"}, "PORTICO_SMTP_PORT"),
        ({"PORTICO_SMTP_PORT": "70000"}, "PORTICO_SMTP_PORT"),
        ({"PORTICO_SMTP_SECURITY": "ssl"}, "PORTICO_SMTP_SECURITY"),
        ({"PORTICO_BILLING": "paypal"}, "PORTICO_BILLING"),
        ({"PORTICO_BASE_URL": "ftp://x"}, "PORTICO_BASE_URL"),
        ({"PORTICO_BASE_URL": "https://example.com/portal"}, "PORTICO_BASE_URL"),
        ({"PORTICO_DATABASE_URL": "mysql://user@host/db"}, "PORTICO_DATABASE_URL"),
        ({"PORTICO_SECRET_KEY": "too-short"}, "PORTICO_SECRET_KEY"),
        ({"PORTICO_BILLING": "stripe"}, "PORTICO_STRIPE_SECRET_KEY"),
        ({"PORTICO_STRIPE_API_BASE": "localhost:12111"}, "PORTICO_STRIPE_API_BASE"),
        ({"PORTICO_REDIS_URL": "http://localhost:6379"}, "PORTICO_REDIS_URL"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env, variable):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message
    assert len(message) < 200


def test_stripe_with_a_key_is_fine():
    settings = Settings.from_env({"PORTICO_BILLING": "stripe", "PORTICO_STRIPE_SECRET_KEY": "sk"})
    assert settings.billing == "stripe"


def test_require_secret_key():
    with pytest.raises(SettingsError, match=r"^PORTICO_SECRET_KEY: "):
        Settings.from_env({}).require_secret_key()
    Settings.from_env({"PORTICO_SECRET_KEY": GOOD_KEY}).require_secret_key()


# --- the console script ------------------------------------------------------------------------


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


async def _portico(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(PORTICO),
        *args,
        cwd=tmp_path,
        env=_clean_env(tmp_path, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_serve_without_a_secret_key_stops_with_one_line(tmp_path):
    code, out, err = await _portico(tmp_path, "serve")
    assert code != 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "PORTICO_SECRET_KEY" in lines[0]
    assert "Traceback" not in err


async def test_the_demo_refuses_to_seed_a_stripe_mirror(tmp_path):
    code, out, err = await _portico(
        tmp_path,
        "demo",
        "--seed-only",
        PORTICO_BILLING="stripe",
        PORTICO_STRIPE_SECRET_KEY="sk_test_x",
    )
    assert code != 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "PORTICO_BILLING" in lines[0]
    assert not (tmp_path / "var").exists() or not any((tmp_path / "var").glob("*.sqlite3"))


async def test_a_bad_environment_value_stops_with_one_line(tmp_path):
    code, out, err = await _portico(tmp_path, "migrate", PORTICO_SMTP_PORT="abc")
    assert code != 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "PORTICO_SMTP_PORT" in lines[0]


async def test_help_for_every_command(tmp_path):
    results = await asyncio.gather(
        _portico(tmp_path, "--help"),
        _portico(tmp_path, "demo", "--help"),
        _portico(tmp_path, "serve", "--help"),
        _portico(tmp_path, "migrate", "--help"),
    )
    top, demo, serve, _ = results
    for code, out, err in results:
        assert code == 0, err
        assert out.startswith("Usage: portico")
    for command in ("demo", "serve", "migrate"):
        assert command in top[1]
    assert "--port" in serve[1]
    assert "--host" in serve[1]
    assert "--seed-only" in demo[1]


async def test_migrate_creates_the_tables_on_a_fresh_sqlite_file(tmp_path):
    path = tmp_path / "data" / "fresh.sqlite3"
    code, out, err = await _portico(tmp_path, "migrate", PORTICO_DATABASE_URL=f"sqlite:///{path}")
    assert code == 0, err
    assert "Database is up to date." in out
    connection = sqlite3.connect(path)
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    finally:
        connection.close()
    for table in (
        "login_attempt",
        "web_session",
        "mail_outbox",
        "portal_configuration",
        "brand_asset",
        "billing_customer",
        "billing_subscription",
        "audit_event",
    ):
        assert table in tables
    # Running it again is a no-op.
    code, out, err = await _portico(tmp_path, "migrate", PORTICO_DATABASE_URL=f"sqlite:///{path}")
    assert code == 0, err


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://127.0.0.1:6379/0",
        "rediss://:p%40ss@cache.internal:6380/2",
        "redis://user:pass@cache/15",
        "unix:///run/redis/redis.sock",
    ],
)
def test_redis_urls_that_are_accepted(url):
    assert Settings.from_env({"PORTICO_REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:6379",
        "redis://",
        "redis://:hunter2-secret@cache:notaport/0",
        "redis://:hunter2-secret@cache:6379/zero",
        "localhost:6379",
        "unix://",
    ],
)
def test_a_bad_redis_url_is_one_line_without_the_password(url):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"PORTICO_REDIS_URL": url})
    message = str(raised.value)
    assert message.startswith("PORTICO_REDIS_URL: ")
    assert "\n" not in message
    assert "hunter2" not in message


def test_the_redis_key_prefix():
    assert Settings.from_env({}).redis_prefix == "portico:"
    assert Settings.from_env({"PORTICO_REDIS_PREFIX": "acme:"}).redis_prefix == "acme:"
    with pytest.raises(SettingsError, match=r"^PORTICO_REDIS_PREFIX: "):
        Settings.from_env({"PORTICO_REDIS_PREFIX": "has space"})
