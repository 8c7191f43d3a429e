"""Structured logs: one JSON object per line (or plain text), with secrets redacted.

- ``JsonFormatter``: ``{"time", "level", "logger", "message", "request_id", …}`` per line; the
  access log adds ``method``, ``path``, ``status``, ``duration_ms`` and ``client``.
- ``TextFormatter``: the same fields as one readable line (the demo's default).
- ``RedactingFilter``: on the handler, so every record that reaches the output, whichever logger
  wrote it (ours, uvicorn's, a library's), is cleaned first. ``redact()`` removes passcodes next
  to the word "code", session/CSRF cookies, ``Authorization``/``Cookie`` header values, Stripe
  secret and webhook keys, values of keys named like secrets (``password=…``, ``"token": …``) and
  the login-link token and attempt id in ``/p/login/<token>/code/<attempt>`` paths.
- ``RequestLog``: an ASGI wrapper that gives every request an id (in every log line written while
  it runs) and writes one access line when it ends. The path is logged without its query string
  (which can hold an email address) and with the login-link token replaced by ``…``.
- ``dict_config()``/``configure()``: the ``logging.config`` dictionary ``portico serve`` hands to
  uvicorn, so each worker process configures itself the same way.

Request bodies, cookies and headers are never logged.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import secrets
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.web.security import client_ip

REDACTED = "[redacted]"
ACCESS_LOGGER = "portico.access"
QUIET_PATHS = frozenset({"/healthz", "/readyz"})  # probes every few seconds: logged at DEBUG

request_id_var: ContextVar[str] = ContextVar("portico_request_id", default="")

_VALUE = r"(?:\[redacted\]|[^\s\"'&,;)}\]]+)"
_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    # The login link's token and the attempt id after it (together they open the code form).
    (
        re.compile(r"(/p/login/)[^/\s?#\"'<>]+(?:(/code/)[^/\s?#\"'<>]+)?"),
        lambda m: m.group(1) + "…" + (m.group(2) + "…" if m.group(2) else ""),
    ),
    # Stripe secret and restricted keys, webhook signing secrets.
    (re.compile(r"\b((?:sk|rk)_(?:test|live)_)[A-Za-z0-9]+"), rf"\1{REDACTED}"),
    (re.compile(r"\b(whsec_)[A-Za-z0-9+/=]+"), rf"\1{REDACTED}"),
    # Header values: Authorization, Cookie, Set-Cookie, X-CSRFToken (up to the end of the value).
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|(?:set-)?cookie|x-csrftoken)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # Our cookies wherever they appear (a header tuple, a raw Cookie line).
    (
        re.compile(r"(?i)((?:__Host-)?(?:portico_session|portico_merchant|csrftoken)=)[^;,\s\"']+"),
        rf"\1{REDACTED}",
    ),
    # key=value / "key": "value" for keys named like secrets.
    (
        re.compile(
            r"(?i)\b(\w*(?:password|passwd|passcode|secret|token|api_?key)\w*)"
            rf"([\"']?\s*[:=]\s*[\"']?){_VALUE}"
        ),
        rf"\1\2{REDACTED}",
    ),
    # A six-digit code next to the word "code" ("code=123456", "code: 123 456", "code is …"),
    # and the autofill line of the passcode email ("@billing.example.com #123456").
    (
        re.compile(
            r"(?i)\b((?:pass)?codes?\b[\"']?\s*(?:[:=]|is|was)?\s*[\"']?)\d{3}[ -]?\d{3}(?!\d)"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(@[A-Za-z0-9.\-:\[\]]+ #)\d{6}(?!\d)"), rf"\1{REDACTED}"),
]
_SECRET_KEY = re.compile(
    r"(?i)(password|passwd|passcode|secret|token|cookie|authorization|api_?key|^code$|^sealed$)"
)
# LogRecord's own attributes: everything else on a record came in through ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
    "request_id",
    "portico_redacted",  # set by RedactingFilter: the record is clean already
}


def _stamp_request_id() -> None:
    """Give every record the id of the request it was written in, when it is created: a handler
    that formats later (a queue, pytest's caplog) still sees it. Installed once, at import."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "portico", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    factory.portico = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_stamp_request_id()


# Something every match of ``_PATTERNS`` contains (compared without case): text without any of
# these has nothing to redact, which one search tells (most log lines: an access line is
# redacted three times on its way out, eight patterns each).
_MIGHT_HOLD_A_SECRET = re.compile(
    r"(?i)/p/login/|_test_|_live_|whsec_|authorization|cookie|csrftoken|bearer|basic|portico_"
    r"|passw|secret|token|api_?key|code|@"
)


def redact(text: str) -> str:
    """``text`` with every secret the patterns know replaced by ``[redacted]`` (or ``…``)."""
    if not _MIGHT_HOLD_A_SECRET.search(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_path(path: str) -> str:
    return redact(path)


@lru_cache(maxsize=512)
def _named_like_a_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def _clean(key: str, value: Any) -> Any:
    if _named_like_a_secret(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(repr(value))


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record carries besides the standard ones (``extra={…}``)."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}


class RedactingFilter(logging.Filter):
    """Rewrites each record before any formatter sees it: the message is rendered and redacted
    (its arguments dropped), the traceback is rendered and redacted, extra fields named like
    secrets are replaced. Never drops a record."""

    _traceback = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logged as it is, not lost
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._traceback.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in extras(record).items():
            setattr(record, key, _clean(key, value))
        record.portico_redacted = True
        return True


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    # Cleaned here unless the handler's RedactingFilter has already done it.
    clean = not getattr(record, "portico_redacted", False)
    message = record.getMessage()
    fields: dict[str, Any] = {
        "time": _time(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": redact(message) if clean else message,
    }
    request_id = getattr(record, "request_id", "") or request_id_var.get()
    if request_id:
        fields["request_id"] = request_id
    for key, value in extras(record).items():
        fields.setdefault(key, _clean(key, value) if clean else value)
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(formatter.formatException(record.exc_info))
    if record.exc_text:
        fields["exception"] = redact(record.exc_text) if clean else record.exc_text
    if record.stack_info:
        fields["stack"] = redact(record.stack_info) if clean else record.stack_info
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self), default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value …`` (a traceback follows on its own lines)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record, self)
        head = f"{fields.pop('time')} {fields.pop('level').upper()} {fields.pop('logger')}: "
        line = head + fields.pop("message")
        exception = fields.pop("exception", "")
        stack = fields.pop("stack", "")
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return "\n".join(part for part in (line, exception, stack) if part)


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def _at_least_info(level: str) -> str:
    return "INFO" if logging.getLevelName(level) < logging.INFO else level


def dict_config(log_format: str = "json", level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` for a server process: one handler on stderr with the
    redacting filter, used by every logger (uvicorn's included; uvicorn's own access log is off,
    ``portico.access`` replaces it)."""
    formatter = FORMATTERS[log_format]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": f"{__name__}.RedactingFilter"}},
        "formatters": {"portico": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "portico": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "portico",
                "filters": ["redact"],
            }
        },
        "root": {"level": level, "handlers": ["portico"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "piccolo": {"level": "WARNING"},  # "Running Sqlite version …" at every start
            # Libraries whose DEBUG lines carry query parameters or message bodies (the login
            # link token in a WHERE clause, the demo mail catcher's DATA lines): never below INFO.
            "aiosqlite": {"level": _at_least_info(level)},
            "asyncpg": {"level": _at_least_info(level)},
            "mail.log": {"level": _at_least_info(level)},
        },
    }


def configure(log_format: str = "json", level: str = "INFO") -> None:
    logging.config.dictConfig(dict_config(log_format, level))


def new_request_id() -> str:
    return secrets.token_hex(8)


class RequestLog:
    """ASGI wrapper: a request id for the request's log lines, and one access line at the end.

    ``app.factory`` puts it around Litestar's whole handler (outside the router), so 404s, 405s,
    413s and crashes are logged like any other request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._write(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _write(self, scope: Scope, status: int, seconds: float) -> None:
        path = redact_path(scope.get("path", ""))
        level = logging.DEBUG if path in QUIET_PATHS and status < 500 else logging.INFO
        if status >= 500:
            level = logging.WARNING
        if not self.log.isEnabledFor(level):
            return
        method = scope.get("method", "")
        duration_ms = round(seconds * 1000, 1)
        # Made and handled directly: Logger.log would also walk the stack for the caller's file
        # and line, which an access line does not show.
        record = self.log.makeRecord(
            self.log.name,
            level,
            __file__,
            0,
            "%s %s %s %.1f ms",
            (method, path, status, duration_ms),
            None,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "client": client_ip(scope),
            },
        )
        self.log.handle(record)
