"""Structured logs (app.logging): the formats, the redaction, the access log, and a whole sign-in
that leaves no passcode, cookie or token in the logs."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from app import logging as app_logging
from app.logging import (
    REDACTED,
    JsonFormatter,
    RedactingFilter,
    RequestLog,
    TextFormatter,
    redact,
)
from app.settings import Settings, SettingsError
from tests import helpers
from tests.conftest import TEST_SECRET
from tests.helpers import JENNY, NOBODY, code_of, make_worker, smtp_for

# The page fixtures (tests/conftest.py does not share them; subpackages re-export them).
shared_app, shop, portal = helpers.shared_app, helpers.shop, helpers.portal


# --- redact() ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("code=123456", "123456"),
        ("code: 123 456", "123 456"),
        ("Your code is 123456.", "123456"),
        ("passcode '654321'", "654321"),
        ("{'code': '000111', 'other': 1}", "000111"),
        ('{"code": "246810"}', "246810"),
        ("@billing.example.com #135790", "135790"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("{'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA"),
        ("Cookie: portico_session=abcDEF123_-xyz; csrftoken=f00ba4", "abcDEF123_-xyz"),
        ("Cookie: portico_session=abcDEF123_-xyz; csrftoken=f00ba4", "f00ba4"),
        ("(b'cookie', b'__Host-portico_session=tok3nVALUE')", "tok3nVALUE"),
        ("set-cookie: portico_merchant=m3rchantTOKEN; HttpOnly", "m3rchantTOKEN"),
        ("x-csrftoken: 0123abcd", "0123abcd"),
        ("Stripe key sk_live_51Habcdefghijklmnop rejected", "51Habcdefghijklmnop"),
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("rk_live_abcdef0123456789", "abcdef0123456789"),
        (
            "signing secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ("{'smtp_password': 's3cr3t!'}", "s3cr3t!"),
        ("secret_key=" + TEST_SECRET, TEST_SECRET),
        ("login_page_token=lpt_abcdef", "lpt_abcdef"),
        ('"_csrf_token": "tokenvalue123"', "tokenvalue123"),
        ("GET /p/login/lpt_S3cretLinkToken HTTP/1.1", "lpt_S3cretLinkToken"),
        ("/p/login/lpt_S3cretLinkToken/code/Att3mptId_xyz/resend", "Att3mptId_xyz"),
        ("https://billing.example.com/p/login/lpt_S3cret?prefilled_email=a", "lpt_S3cret"),
        # Any case: redact() first looks for a word every pattern needs, without case.
        ("PROXY-AUTHORIZATION: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        ("Smtp_Password: Hunter2Hunter2", "Hunter2Hunter2"),
        ("PassCode IS 975310", "975310"),
        ("API_KEY=abcdef123456", "abcdef123456"),
        ("COOKIE: __Host-PORTICO_SESSION=Upper", "Upper"),
    ],
)
def test_secrets_are_redacted(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned, cleaned
    assert REDACTED in cleaned or "…" in cleaned
    assert redact(cleaned) == cleaned  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "GET /portal/invoices/in_123 200 3.1 ms",
        "mail 42 to outbox retry 2: 451 try again later",
        "invoice total 123456 cents",  # a number not next to "code" stays
        "status code 404",
        "Uvicorn running on http://127.0.0.1:8000",
    ],
)
def test_ordinary_text_is_kept(text):
    assert redact(text) == text


def test_login_paths_keep_their_shape():
    assert redact("/p/login/lpt_abc") == "/p/login/…"
    assert redact("/p/login/lpt_abc/code/att_1") == "/p/login/…/code/…"
    assert redact("/p/login/lpt_abc/code/att_1/resend") == "/p/login/…/code/…/resend"


# --- the filter and the formatters -------------------------------------------------------------


def _record(msg: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    logger = logging.getLogger("portico.test")
    record = logger.makeRecord(
        logger.name, logging.WARNING, __file__, 1, msg, args, exc_info, extra=extra or None
    )
    return record


def test_the_filter_renders_and_redacts_message_extras_and_traceback():
    try:
        raise ValueError("bad code=123456 for sk_live_abcdefghijkl")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record(
        "verify %s with cookie %r",
        "code=987654",
        {"cookie": "portico_session=zzzTOKENzzz"},
        exc_info=exc_info,
        token="plain-token-value",
        path="/p/login/lpt_abc",
        status=200,
    )
    assert RedactingFilter().filter(record) is True
    assert record.args is None
    for secret in ("987654", "zzzTOKENzzz", "123456", "abcdefghijkl", "plain-token-value"):
        assert secret not in record.getMessage()
        assert secret not in (record.exc_text or "")
    assert record.token == REDACTED
    assert record.path == "/p/login/…"
    assert record.status == 200
    assert "ValueError" in record.exc_text


def test_json_is_one_object_per_line():
    try:
        raise RuntimeError("line one\nline two")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = _record("hello %s\nsecond line", "world", exc_info=exc_info, status=404)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "warning"
    assert data["logger"] == "portico.test"
    assert data["message"] == "hello world\nsecond line"
    assert data["status"] == 404
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["time"])
    assert "RuntimeError: line one" in data["exception"]


def test_json_redacts_even_without_the_filter():
    record = _record("code=123456", cookie="portico_session=abc")
    data = json.loads(JsonFormatter().format(record))
    assert "123456" not in data["message"]
    assert data["cookie"] == REDACTED


def test_text_format():
    token = app_logging.request_id_var.set("abc123")
    try:
        record = _record("GET %s", "/portal", status=200)
    finally:
        app_logging.request_id_var.reset(token)
    line = TextFormatter().format(record)
    assert re.fullmatch(
        r"\S+Z WARNING portico\.test: GET /portal request_id=abc123 status=200", line
    ), line


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``configure()`` rewires the root logger; put everything back afterwards."""
    root = logging.getLogger()
    names = ["uvicorn", "uvicorn.error", "uvicorn.access", "piccolo", "portico.access"]
    saved = (root.level, list(root.handlers), [root.filters[:]])
    loggers = {name: logging.getLogger(name) for name in names}
    saved_loggers = {
        name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        for name, lg in loggers.items()
    }
    yield
    for handler in root.handlers:
        if handler not in saved[1]:
            handler.close()
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    root.filters[:] = saved[2][0]
    for name, (level, handlers, propagate, disabled) in saved_loggers.items():
        lg = loggers[name]
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.disabled = disabled


def test_configure_json_writes_redacted_lines_to_stderr(restore_logging, capsys):
    app_logging.configure("json")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("portico.login").warning("refused code=%s", "123456")
    logging.getLogger("uvicorn.access").info("access line uvicorn would write")
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["logger"] for r in records] == ["uvicorn.error", "portico.login"]
    assert records[0]["message"] == "Started server process [42]"
    assert records[1]["message"] == f"refused code={REDACTED}"


def test_the_log_format_setting():
    assert Settings.from_env({}).log_format == ""  # the command decides
    assert Settings.from_env({"PORTICO_LOG_FORMAT": "text"}).log_format == "text"
    with pytest.raises(SettingsError, match=r"^PORTICO_LOG_FORMAT: must be json or text$"):
        Settings.from_env({"PORTICO_LOG_FORMAT": "xml"})


def test_dict_config_formats():
    assert app_logging.dict_config("json")["formatters"]["portico"]["()"].endswith("JsonFormatter")
    assert app_logging.dict_config("text")["formatters"]["portico"]["()"].endswith("TextFormatter")
    with pytest.raises(KeyError):
        app_logging.dict_config("xml")


# --- the access log ----------------------------------------------------------------------------


async def test_every_request_gets_an_access_line_with_a_request_id(portal, caplog):
    caplog.set_level(logging.DEBUG)
    await portal.client.get(portal.login_path + "?prefilled_email=jenny%40example.com")
    await portal.client.get("/no-such-page")
    await portal.client.get("/healthz")
    lines = [r for r in caplog.records if r.name == "portico.access"]
    assert [(r.method, r.path, r.status) for r in lines] == [
        ("GET", "/p/login/…", 200),
        ("GET", "/no-such-page", 404),
        ("GET", "/healthz", 200),
    ]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO, logging.DEBUG]
    ids = {r.request_id for r in lines}
    assert len(ids) == 3
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert all(r.duration_ms >= 0 and r.client == "127.0.0.1" for r in lines)
    assert all("prefilled_email" not in r.getMessage() for r in lines)  # no query strings


async def test_lines_written_during_a_request_carry_its_id(portal, caplog):
    from app.web import errors
    from tests.web.test_errors import _register

    _register(portal.app)
    caplog.set_level(logging.INFO)
    await portal.client.get("/boom")
    [crash] = [r for r in caplog.records if r.name == errors.log.name]
    [access] = [r for r in caplog.records if r.name == "portico.access"]
    assert access.status == 500
    data = json.loads(JsonFormatter().format(crash))
    assert data["request_id"] == access.request_id
    assert "exception" in data


async def test_a_crash_in_the_asgi_stack_is_logged_as_500(caplog):
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    caplog.set_level(logging.INFO)
    with pytest.raises(RuntimeError):
        await RequestLog(broken)({"type": "http", "method": "GET", "path": "/x"}, None, None)
    [access] = [r for r in caplog.records if r.name == "portico.access"]
    assert access.status == 500
    assert access.levelno == logging.WARNING


# --- a whole sign-in ---------------------------------------------------------------------------


async def _sign_in_and_deliver(portal, smtp_server) -> dict[str, str]:
    """Request a code (and one for an unknown email), deliver the mail, sign in, open a page,
    sign out; return every secret value that went by."""
    login_token = portal.login_path.rsplit("/", 1)[1]
    await portal.request_code(NOBODY)
    await portal.request_code(JENNY)
    attempt_id = await portal.latest_attempt(JENNY)
    code = await code_of(portal.settings, attempt_id)
    worker = make_worker(
        portal.settings, smtp_for(portal.settings, smtp_server.host, smtp_server.port)
    )
    await worker.deliver_due()
    assert any(code in str(m) for m in smtp_server.inbox.messages)  # it really went by
    csrf = await portal.csrf()
    # A wrong code first, then the right one.
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    await portal.post(portal.code_url(attempt_id), {"code": wrong})
    response = await portal.post(portal.code_url(attempt_id), {"code": code})
    assert response.status_code == 303, response.text
    session = portal.session_cookie(response)
    assert (await portal.client.get("/portal")).status_code == 200
    await portal.post("/portal/sign-out")
    return {
        "code": code,
        "wrong code": wrong,
        "session": session,
        "csrf": csrf,
        "login token": login_token,
        "attempt id": attempt_id,
        "secret key": portal.settings.secret_key,
    }


APP_LOGGERS = {"portico", "uvicorn", "litestar", "piccolo", "app"}


def _assert_clean(text: str, secrets: dict[str, str]) -> None:
    for name, value in secrets.items():
        assert value not in text, f"the {name} is in the logs"


async def test_a_whole_sign_in_logs_no_secret_caplog(portal, smtp_server, caplog):
    """Every record the app writes during a sign-in, at DEBUG, as it is created (before any
    handler's filter): the app never puts a secret in a log call in the first place."""
    caplog.set_level(logging.DEBUG)
    secrets = await _sign_in_and_deliver(portal, smtp_server)
    # The app's and the server's loggers (not the test's own HTTP client and SMTP server, nor
    # the database drivers' DEBUG lines, which the production configuration keeps at INFO: see
    # the JSON test below).
    records = [r for r in caplog.records if r.name.split(".")[0] in APP_LOGGERS]
    assert len([r for r in records if r.name == "portico.access"]) >= 8
    for record in records:
        text = " ".join(
            [record.getMessage(), repr(app_logging.extras(record)), record.exc_text or ""]
        )
        _assert_clean(text, secrets)


async def test_a_whole_sign_in_logs_no_secret_json(portal, smtp_server, restore_logging, capsys):
    """The same sign-in through the production configuration, every logger at DEBUG (the test's
    SMTP server and HTTP client included): stderr holds only JSON lines, and no secret."""
    app_logging.configure("json", level="DEBUG")
    secrets = await _sign_in_and_deliver(portal, smtp_server)
    cookie = f"portico_session={secrets['session']}"
    logging.getLogger("portico.test").info("a library logs a header: Cookie: %s", cookie)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [r for r in records if r["logger"] == "portico.access"]
    assert {"request_id", "method", "path", "status", "duration_ms", "client"} <= set(access[0])
    assert any(r["path"] == "/p/login/…/code/…" and r["method"] == "POST" for r in access)
    _assert_clean(err, secrets)
