"""Process settings, read once from the environment (``PORTICO_*``).

``Settings.from_env()`` validates every variable and raises ``SettingsError`` whose message is one
line naming the variable, so ``portico`` can stop with exactly that line. Tests build ``Settings``
directly and pass it to ``create_app``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VAR_DIR = Path.cwd() / "var"

HTMX_VERSION = "2.0.11"
HTMX_CDN_URL = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# openssl dgst -sha384 -binary htmx.min.js | openssl base64 -A   (npm htmx.org@2.0.11)
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"

SmtpSecurity = Literal["none", "starttls", "tls"]
BillingMode = Literal["sandbox", "stripe"]
LogFormat = Literal["", "json", "text"]  # "": the command decides (serve: json, demo: text)


class SettingsError(ValueError):
    """A bad environment value; ``str(error)`` is one line naming the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = ""
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: SmtpSecurity = "none"
    smtp_timeout: float = 10.0
    mail_from: str = "Portico <no-reply@localhost>"
    billing: BillingMode = "sandbox"
    stripe_secret_key: str = ""
    stripe_api_base: str = ""
    stripe_webhook_secret: str = ""
    # Optional Redis shared by every instance: per-address throttles and a session cache.
    redis_url: str = ""
    # Prefix of every Redis key (lets several deployments, or test runs, share one Redis).
    redis_prefix: str = "portico:"
    # Memory per process for rendered portal pages kept until their data changes (0: none).
    page_cache_mb: int = 32
    htmx_url: str = HTMX_CDN_URL
    htmx_integrity: str = HTMX_SRI
    var_dir: str = str(DEFAULT_VAR_DIR)
    # Comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed.
    # Empty: nobody's, so the client address is the socket peer.
    trusted_proxies: str = ""
    log_format: LogFormat = ""
    # Start the outbox delivery worker inside the web process (tests switch it off to drive it).
    run_mail_worker: bool = True
    # Demo-only: the built-in mail catcher's inbox is mounted at /_dev/mail when set.
    mail_catcher: bool = False

    @property
    def is_https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def trusted_proxy_list(self) -> list[str]:
        """``trusted_proxies`` as normalised networks (``10.0.0.0/8``, ``203.0.113.7/32``)."""
        return [
            str(ipaddress.ip_network(item.strip(), strict=False))
            for item in self.trusted_proxies.split(",")
            if item.strip()
        ]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.var_dir) / 'portico.sqlite3'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in _ENV_FIELDS:
            key = f"PORTICO_{name.upper()}"
            if key in env and env[key] != "":
                values[name] = env[key]
        values.update(overrides)
        try:
            settings = msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as error:
            raise SettingsError(_describe(error)) from None
        settings.validate()
        return settings

    def validate(self) -> None:
        url = self.resolved_database_url
        if not url.startswith(("sqlite:///", "postgres://", "postgresql://")):
            raise SettingsError(
                "PORTICO_DATABASE_URL: use sqlite:///path/to/file.sqlite3 or postgresql://user@host/db"
            )
        base = urlsplit(self.base_url)
        if base.scheme not in ("http", "https") or not base.hostname or base.path not in ("", "/"):
            raise SettingsError(
                "PORTICO_BASE_URL: must be an absolute http(s) origin such as https://billing.example.com"
            )
        if not 0 < self.smtp_port < 65536:
            raise SettingsError("PORTICO_SMTP_PORT: must be a port number between 1 and 65535")
        if self.secret_key and len(self.secret_key) < 32:
            raise SettingsError("PORTICO_SECRET_KEY: must be at least 32 characters long")
        if self.billing == "stripe" and not self.stripe_secret_key:
            raise SettingsError("PORTICO_STRIPE_SECRET_KEY: required when PORTICO_BILLING=stripe")
        if self.stripe_api_base and not self.stripe_api_base.startswith(("http://", "https://")):
            raise SettingsError("PORTICO_STRIPE_API_BASE: must be an http(s) URL")
        if not 0 <= self.page_cache_mb <= 4096:
            raise SettingsError("PORTICO_PAGE_CACHE_MB: a number of megabytes from 0 to 4096")
        if self.redis_url and not _is_redis_url(self.redis_url):
            # The value itself is not repeated: it may hold a password.
            raise SettingsError(
                "PORTICO_REDIS_URL: use redis://[:password@]host[:port][/db] "
                "(rediss:// for TLS, unix:///path/to/redis.sock for a socket)"
            )
        if (
            not self.redis_prefix
            or len(self.redis_prefix) > 64
            or not self.redis_prefix.isprintable()
            or " " in self.redis_prefix
        ):
            raise SettingsError(
                "PORTICO_REDIS_PREFIX: 1 to 64 printable characters without spaces "
                "(such as portico:)"
            )
        try:
            self.trusted_proxy_list  # noqa: B018  (parses every entry)
        except ValueError:
            raise SettingsError(
                "PORTICO_TRUSTED_PROXIES: comma-separated IP addresses or networks, "
                "such as 10.0.0.5,192.168.0.0/16"
            ) from None

    def require_secret_key(self) -> None:
        if not self.secret_key:
            raise SettingsError(
                "PORTICO_SECRET_KEY: required (at least 32 random characters, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )


_ENV_FIELDS = [
    "database_url",
    "secret_key",
    "base_url",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_security",
    "mail_from",
    "billing",
    "stripe_secret_key",
    "stripe_api_base",
    "stripe_webhook_secret",
    "redis_url",
    "redis_prefix",
    "page_cache_mb",
    "htmx_url",
    "htmx_integrity",
    "var_dir",
    "trusted_proxies",
    "log_format",
]


def _is_redis_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return bool(parts.path.strip("/"))
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return False
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError:
        return False
    database = parts.path.strip("/")
    return database == "" or (database.isdigit() and int(database) < 100_000)


def _describe(error: msgspec.ValidationError) -> str:
    """Turn msgspec's ``Expected `int`, got `str` - at `$.smtp_port``` into one line naming the
    environment variable."""
    message = str(error)
    field = ""
    if "$." in message:
        field = message.rsplit("$.", 1)[1].strip("` ")
        message = message.rsplit(" - at ", 1)[0]
    name = f"PORTICO_{field.upper()}" if field else "PORTICO_*"
    hints = {
        "smtp_security": "must be one of none, starttls, tls",
        "billing": "must be sandbox or stripe",
        "smtp_port": "must be a port number",
        "log_format": "must be json or text",
    }
    return f"{name}: {hints.get(field, message)}"
