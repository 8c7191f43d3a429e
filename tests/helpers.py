"""Helpers shared by the login, mail, portal, web and configuration tests.

- ``fake_clock``: a fixture that replaces ``app.clock.now`` with a clock the test moves by hand.
- ``demo``: a fixture that seeds the demo merchant (Acme Cloud) and returns its summary.
- ``shop``: a small stand-in for the demo (faster) for the service tests.
- ``open_portal(settings, summary)``: the whole app (``create_app``) with its real startup and
  shutdown, and an HTTP client, both in the test's event loop.

Why not ``litestar.testing.AsyncTestClient``: it runs the application (and its startup hook, which
opens the PostgreSQL pool) in a separate thread with its own event loop. The tests also read the
database directly between requests; on PostgreSQL those reads would then touch an asyncpg pool of
another loop ("attached to a different loop"). ``httpx.ASGITransport`` plus the app's own startup
and shutdown hooks run the same app in the test's loop, as uvicorn does in production.

Subpackage ``conftest.py`` files re-export the fixtures.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from app import clock
from app import db as database
from app.billing import demo as demo_data
from app.billing.sandbox import SandboxGateway
from app.billing.tables import Customer, Subscription
from app.configuration import service as configurations
from app.configuration.tables import PortalConfiguration
from app.factory import create_app
from app.login import delivery
from app.login.tables import LoginAttempt, WebSession
from app.mail import service as mail
from app.mail.tables import OutboxMessage
from app.mail.transport import SmtpConfig
from app.mail.worker import DeliveryWorker
from app.portal import page_cache
from app.settings import Settings
from app.web.templating import make_environment
from app.web.throttle import MemoryThrottle
from tests.conftest import TEST_SECRET

BASE_URL = "http://portal.test"
JENNY = "jenny.rosen@example.com"
SAM = "sam.shared@example.com"
PAT = "pat.trial@example.com"
LEE = "lee.canceling@example.com"
MAX = "max.noplan@example.com"
# Not a customer, and exactly as long as JENNY (so pages for the two have the same length).
NOBODY = "jenny.rosan@example.com"

CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"|"x-csrftoken": "([^"]+)"')


class FakeClock:
    """Stands in for ``app.clock.now``; starts at the real time (whole seconds)."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current

    def set(self, value: datetime) -> datetime:
        self.current = value
        return value


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


@pytest.fixture
async def demo(db) -> demo_data.DemoSummary:
    """The full demo merchant (about forty customers with histories): for page tests."""
    return await demo_data.seed()


@pytest.fixture
async def shop(db) -> demo_data.DemoSummary:
    """A small stand-in for the demo, several times faster to create: Acme Cloud's portal
    configuration and the customers the sign-in rules need (Jenny; Pat; Sam Older with an active
    subscription and Sam Newer without one)."""
    now = clock.now()
    configuration = PortalConfiguration(
        id=configurations.new_configuration_id(),
        is_default=True,
        login_page_token=configurations.new_login_token(),
        business_name=demo_data.BUSINESS_NAME,
        brand_color=demo_data.BRAND_COLOR,
        accent_color=demo_data.ACCENT_COLOR,
    )
    people = [
        ("cus_jenny", "Jenny Rosen", JENNY, now - timedelta(days=400), "active"),
        ("cus_pat", "Pat Trial", PAT, now - timedelta(days=5), "trialing"),
        ("cus_sam_older", "Sam Older", SAM, now - timedelta(days=300), "active"),
        ("cus_sam_newer", "Sam Newer", SAM, now - timedelta(days=30), None),
    ]
    async with database.write():
        await PortalConfiguration.insert(configuration)
        for id_, name, email, created, status in people:
            await Customer.insert(Customer(id=id_, name=name, email=email, created=created))
            if status:
                await Subscription.insert(
                    Subscription(
                        id=f"sub_{id_}",
                        customer=id_,
                        status=status,
                        currency="usd",
                        created=created,
                    )
                )
    return demo_data.DemoSummary(
        login_path=configurations.login_path(configuration),
        configuration_id=configuration.id,
        business_name=configuration.business_name,
        customer_emails=[JENNY, SAM, PAT],
        created=True,
    )


async def configuration_of(summary: demo_data.DemoSummary) -> PortalConfiguration:
    found = (
        await PortalConfiguration.objects()
        .where(PortalConfiguration.id == summary.configuration_id)
        .first()
    )
    assert found is not None
    return found


async def code_of(settings: Settings, attempt_id: str) -> str:
    """The passcode queued for ``attempt_id`` (read back from its sealed outbox row)."""
    row = await OutboxMessage.select().where(OutboxMessage.reference == attempt_id).first()
    assert row is not None, attempt_id
    code = mail.unseal(settings, row["sealed"]).get("code")
    assert code, "the outbox row no longer holds its code"
    return code


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def csrf_token(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1) or found.group(2)


def without_html(text: str) -> bool:
    return "<html" not in text.lower() and "<!doctype" not in text.lower()


HX = {"HX-Request": "true"}


class Portal:
    """A client on the app plus the few steps most tests take."""

    def __init__(
        self, app: Litestar, client: httpx.AsyncClient, settings: Settings, login_path: str
    ) -> None:
        self.app = app
        self.client = client
        self.settings = settings
        self.login_path = login_path

    async def csrf(self) -> str:
        """A CSRF token from a page (the login page, or any page when the link is off)."""
        response = await self.client.get(self.login_path)
        if response.status_code != 200:
            response = await self.client.get("/signed-out")
        return csrf_token(response.text)

    async def post(self, url: str, data: dict[str, str] | None = None, *, htmx: bool = False):
        token = await self.csrf()
        return await self.client.post(
            url, data={**(data or {}), "_csrf_token": token}, headers=HX if htmx else {}
        )

    async def request_code(self, email: str, *, htmx: bool = False) -> httpx.Response:
        return await self.post(self.login_path, {"email": email}, htmx=htmx)

    async def latest_attempt(self, email: str) -> str:
        row = (
            await LoginAttempt.select(LoginAttempt.id)
            .where(LoginAttempt.email == email)
            .order_by(LoginAttempt.created_at, ascending=False)
            .first()
        )
        assert row is not None, email
        return row["id"]

    def code_url(self, attempt_id: str) -> str:
        return f"{self.login_path}/code/{attempt_id}"

    async def sign_in(self, email: str) -> str:
        """Sign in with a real passcode; return the session cookie's value."""
        response = await self.request_code(email)
        assert response.status_code == 303, response.text
        attempt_id = await self.latest_attempt(email)
        code = await code_of(self.settings, attempt_id)
        response = await self.post(self.code_url(attempt_id), {"code": code})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/portal"
        return self.session_cookie(response)

    def session_cookie(self, response: httpx.Response) -> str:
        name = "__Host-portico_session" if self.settings.is_https else "portico_session"
        found = re.search(rf"{re.escape(name)}=([^;]+)", response.headers.get("set-cookie", ""))
        assert found, response.headers
        return found.group(1)

    async def session_count(self) -> int:
        return await WebSession.count()


def smtp_for(settings: Settings, host: str, port: int) -> SmtpConfig:
    return SmtpConfig(host=host, port=port, sender=settings.mail_from, timeout=5.0)


def make_worker(settings: Settings, config: SmtpConfig) -> DeliveryWorker:
    """A delivery worker wired as ``app.factory.create_app`` wires it."""
    mail.register("passcode", delivery.passcode_preparer(settings, SandboxGateway(settings)))
    return DeliveryWorker(settings, make_environment(settings), lambda: config)


async def queue_mail(settings: Settings, count: int, template: str, **kwargs) -> list[int]:
    """``count`` messages of kind "test" in the outbox, to ``someone<n>@example.com``, rendered
    from ``template`` (``kwargs`` go to ``mail.enqueue`` as they are: ``context``, …); their ids."""
    return [
        await mail.enqueue(
            settings,
            kind="test",
            to_address=f"someone{n}@example.com",
            subject="Test",
            template=template,
            **kwargs,
        )
        for n in range(count)
    ]


async def _run_hooks(app: Litestar, hooks) -> None:
    for hook in hooks:
        result = hook(app) if inspect.signature(hook).parameters else hook()
        if inspect.isawaitable(result):
            await result


def _url_of(engine: Engine) -> str:
    if isinstance(engine, PostgresEngine):
        return engine.config["dsn"]
    return f"sqlite:///{engine.path}"  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
async def shared_app(database_engine: Engine, tmp_path_factory) -> AsyncIterator[Litestar]:
    """One app (started, worker off) for a module's tests: building an app costs more than most
    page tests. Tests that need other settings open their own with ``open_portal``."""
    settings = Settings(
        database_url=_url_of(database_engine),
        secret_key=TEST_SECRET,
        base_url=BASE_URL,
        mail_from="Acme Cloud <billing@acme.test>",
        var_dir=str(tmp_path_factory.mktemp("var")),
        run_mail_worker=False,
    )
    app = create_app(settings)
    await _run_hooks(app, app.on_startup)
    try:
        yield app
    finally:
        await _run_hooks(app, reversed(app.on_shutdown))
        database.bind(database_engine)


@asynccontextmanager
async def _client(app: Litestar, summary: demo_data.DemoSummary) -> AsyncIterator[Portal]:
    app.state.throttle = MemoryThrottle()  # per-address limits start afresh for every test
    # Kept pages too: each test's database starts afresh, and its change counters with it.
    app.state.page_cache = page_cache.from_settings(app.state.settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        yield Portal(app, client, app.state.settings, summary.login_path)


@pytest.fixture
async def portal(shared_app: Litestar, db, shop) -> AsyncIterator[Portal]:
    """A fresh browser on the shared app, with the small shop."""
    async with _client(shared_app, shop) as portal:
        yield portal


@pytest.fixture
async def demo_portal(shared_app: Litestar, db, demo) -> AsyncIterator[Portal]:
    """A fresh browser on the shared app, with the whole demo merchant."""
    async with _client(shared_app, demo) as portal:
        yield portal


@asynccontextmanager
async def open_portal(
    settings: Settings, summary: demo_data.DemoSummary, *, base_url: str = BASE_URL
) -> AsyncIterator[Portal]:
    """The app with its startup/shutdown hooks, and a client for it. Rebinds the tables to the
    test's engine afterwards (``create_app`` binds them to the app's own engine).

    The hooks are called directly rather than through ``app.lifespan()``: that one also enters
    Litestar's event emitter (an anyio task group), which must be left in the task that entered
    it, and pytest-asyncio finalises async fixtures in another task."""
    previous = database.current()
    app = create_app(settings)
    await _run_hooks(app, app.on_startup)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url
        ) as client:
            yield Portal(app, client, settings, summary.login_path)
    finally:
        await _run_hooks(app, reversed(app.on_shutdown))
        database.bind(previous)
