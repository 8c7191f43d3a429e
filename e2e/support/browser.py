"""Browser contexts for the journeys: offline htmx, nothing leaves loopback, and a guard that
collects console errors (CSP violations included), page errors, dialogs and blocked requests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, Route

E2E_DIR = Path(__file__).resolve().parents[1]
HTMX_VERSION = "2.0.11"
HTMX_CDN_URL = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
HTMX_FILE = E2E_DIR / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
LOOPBACK = "127.0.0.1"

# Chrome logs every 4xx/5xx answer as a console error, and htmx logs the ones it treats as
# errors (the htmx-config's "error": true) once more; statuses a journey expects are allowed.
FAILED_RESOURCE = re.compile(
    r"Failed to load resource: the server responded with a status of (\d+)"
    r"|^Response Status Error Code (\d+) from "
)


@dataclass
class BrowserGuard:
    """What went wrong in the browser during one test; checked after the test body."""

    allowed_statuses: set[int] = field(default_factory=lambda: {422})
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)

    def allow_status(self, *statuses: int) -> None:
        self.allowed_statuses.update(statuses)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("dialog", self._on_dialog)

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        csp = "Content Security Policy" in text
        if message.type != "error" and not csp:
            return
        failed = FAILED_RESOURCE.search(text)
        status = failed and int(failed.group(1) or failed.group(2))
        if status and status in self.allowed_statuses and not csp:
            return
        location = message.location.get("url", "") if message.location else ""
        self.console_errors.append(f"[{message.type}] {text} ({location})")

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def problems(self) -> list[str]:
        found = []
        found += [f"console: {line}" for line in self.console_errors]
        found += [f"page error: {line}" for line in self.page_errors]
        found += [f"dialog opened: {line}" for line in self.dialogs]
        found += [f"request left loopback (blocked): {url}" for url in self.blocked_requests]
        return found


def install_routes(context: BrowserContext, guard: BrowserGuard) -> None:
    """Serve the pinned htmx CDN URL from the npm package (same bytes, so SRI passes) and block
    every request that is not to the loopback server."""
    htmx = HTMX_FILE.read_bytes()

    def handle(route: Route) -> None:
        url = route.request.url
        if url == HTMX_CDN_URL:
            route.fulfill(
                status=200,
                body=htmx,
                headers={
                    "Content-Type": "application/javascript",
                    "Access-Control-Allow-Origin": "*",
                },
            )
        elif urlsplit(url).hostname == LOOPBACK:
            route.continue_()
        else:
            guard.blocked_requests.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", handle)


# -- htmx: fragment swaps versus full page loads ------------------------------------------------
MARKER = "__porticoE2eMarker"


def htmx_version(page: Page) -> str | None:
    return page.evaluate("typeof htmx !== 'undefined' && htmx.version || null")


def mark_document(page: Page) -> None:
    """Tag the current document; the tag survives a fragment swap but not a navigation."""
    page.evaluate(f"window.{MARKER} = true")


def same_document(page: Page) -> bool:
    return page.evaluate(f"window.{MARKER} === true")
