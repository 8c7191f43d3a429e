"""End-to-end fixtures: one live Portico server and one SMTP server for the session; every
journey runs in a fresh browser context, once with JavaScript on and once with it off.

Run: ``.venv/bin/pytest e2e -q -p no:cacheprovider``
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from e2e.support import server as live
from e2e.support.browser import BrowserGuard, install_routes
from e2e.support.database import PorticoDatabase
from e2e.support.mailbox import Mailbox, running_smtp_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEFAULT_TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS],
    }


# -- servers ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    with running_smtp_server() as running:
        yield running


@pytest.fixture(scope="session")
def mailbox(smtp_server: tuple[Mailbox, int]) -> Mailbox:
    return smtp_server[0]


@pytest.fixture(scope="session")
def live_server(
    smtp_server: tuple[Mailbox, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[live.LiveServer]:
    var_dir = tmp_path_factory.mktemp("portico-e2e")
    server = live.start(var_dir, smtp_port=smtp_server[1])
    try:
        yield server
    finally:
        died = server.process.poll() is not None
        live.stop(server)
        if died:
            print(f"\nThe Portico server died during the run:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def portico_db(live_server: live.LiveServer) -> PorticoDatabase:
    return PorticoDatabase(live_server.db_path)


@pytest.fixture
def fresh_email(portico_db: PorticoDatabase, mailbox: Mailbox) -> Callable[[str], int]:
    """Forget earlier sign-in attempts for an address (so cooldown and hourly limits from other
    tests, or the other JS run, do not apply) and return how many emails it has had so far."""

    def reset(address: str) -> int:
        portico_db.forget_sign_in_attempts(address)
        portico_db.wait_for_no_pending_mail(address)
        return mailbox.count(address)

    return reset


# -- browser ----------------------------------------------------------------------------------
@pytest.fixture(params=[True, False], ids=["js-on", "js-off"])
def js(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture
def guard() -> BrowserGuard:
    return BrowserGuard()


@pytest.fixture
def make_context(
    browser: Browser, live_server: live.LiveServer, guard: BrowserGuard
) -> Iterator[Callable[..., BrowserContext]]:
    """New browser contexts (JS on or off) with the offline routes and the guard on every page."""
    contexts: list[BrowserContext] = []

    def make(*, javascript: bool) -> BrowserContext:
        live_server.check_alive()
        context = browser.new_context(java_script_enabled=javascript, base_url=live_server.base_url)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        install_routes(context, guard)
        context.on("page", guard.attach)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(make_context: Callable[..., BrowserContext], js: bool) -> BrowserContext:
    return make_context(javascript=js)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test whose browser logged errors (CSP violations included), threw, opened a dialog
    or tried to reach anything but the loopback server."""
    result = yield
    guard = getattr(item, "funcargs", {}).get("guard")
    if isinstance(guard, BrowserGuard) and (problems := guard.problems()):
        pytest.fail("the browser reported problems:\n" + "\n".join(problems), pytrace=False)
    return result
