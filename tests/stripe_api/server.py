"""A real, threaded HTTP/1.1 server on 127.0.0.1 that speaks enough of Stripe's v1 API.

Usage::

    with StripeAPIServer() as stripe_api:          # free port, stopped on exit
        async with stripe_api.connect() as client:  # a stripe.StripeClient for it
            await client.v1.customers.list_async()
        customer = stripe_api.create("customer", email="a@example.test")
        stripe_api.inject_fault("/v1/customers*", status=500, times=1)
        stripe_api.advance_clock(days=31)          # renewals, period-end cancellations
        with stripe_api.slow_processing(0.3): ...  # concurrent requests overlap
        stripe_api.requests / stripe_api.events    # what came in / what happened

The socket layer is the standard library's ``ThreadingHTTPServer`` (one thread per
connection, keep-alive); the request pipeline is :class:`.app.APIApp`.  Stopping the server
wakes injected delays, shuts down open client connections and joins every thread, so no
socket or thread outlives the ``with`` block.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import stripe

from . import webhooks
from .app import DEFAULT_KEY, APIApp, RecordedRequest
from .faults import Fault
from .sdk import HTTPXClient
from .seeding import Seeding
from .state import Clock, State


class _Handler(BaseHTTPRequestHandler):
    # Answer at once: without this every response waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server_version = "stripe-api-fake/1.0"
    timeout = 60
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.app.handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. its timeout fired during a delay)
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], app: APIApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            (self._connections.add if add else self._connections.discard)(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client hung up; not a bug in the fake
        self.app.errors.append(traceback.format_exc())


class StripeAPIServer(Seeding):
    """A started-on-demand fake Stripe API; see the module docstring for the API."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | None = None,
        account_name: str = "Portico Test",
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state = State(seed=seed, account_name=account_name)
        self.app = APIApp(self.state, api_keys)
        self.api_key = next(iter(sorted(api_keys)), DEFAULT_KEY) if api_keys else DEFAULT_KEY
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> StripeAPIServer:
        if self._httpd is not None:
            return self
        self.app.stopping.clear()
        self._httpd = _HTTPServer(self._address, self.app)
        host, port = self._httpd.server_address[:2]
        self.state.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"stripe-api-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self.app.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._httpd = self._thread = None

    def __enter__(self) -> StripeAPIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- inspection -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if not self.state.base_url:
            raise RuntimeError("the server is not started")
        return self.state.base_url

    @property
    def clock(self) -> Clock:
        return self.state.clock

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.app.requests)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event recorded so far, oldest first."""
        with self.state.lock:
            return list(self.state.events)

    def events_of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]

    @property
    def errors(self) -> list[str]:
        """Tracebacks of bugs inside the fake server (tests should expect none)."""
        return list(self.app.errors)

    def clear_requests(self) -> None:
        self.app.requests.clear()

    # -- control ----------------------------------------------------------------------------
    def inject_fault(
        self,
        path_pattern: str | re.Pattern[str],
        *,
        status: int | None = None,
        delay_seconds: float = 0.0,
        times: int | None = 1,
        method: str | None = None,
        should_retry: bool | None = None,
        message: str | None = None,
        code: str | None = None,
    ) -> Fault:
        """Fail and/or delay the next ``times`` requests whose path matches (``None``: all)."""
        if status is None and not delay_seconds:
            raise ValueError("a fault needs a status, a delay, or both")
        return self.app.faults.add(
            Fault(path_pattern, status, delay_seconds, times, method, should_retry, message, code)
        )

    def clear_faults(self) -> None:
        self.app.faults.clear()

    @contextlib.contextmanager
    def slow_processing(self, seconds: float) -> Iterator[None]:
        """Inside, every API request takes ``seconds`` longer to run, after its idempotency key
        was claimed (an injected delay comes before that): requests sent together are in
        progress together, as on a busy Stripe."""
        self.app.processing_delay = seconds
        try:
            yield
        finally:
            self.app.processing_delay = 0.0

    def advance_clock(self, seconds: int = 0, *, days: int = 0, to: int | None = None) -> int:
        """Move the (frozen) clock forward and apply what became due; returns the new time."""
        with self.state.lock:
            if self.state.clock._frozen is None:
                self.state.clock.freeze()
            if to is not None:
                self.state.clock.freeze(max(to, self.state.now()))
            self.state.clock.advance(seconds + days * 86400)
            from .app import tick

            tick(self.state)
            return self.state.now()

    def sign_event(self, payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
        """A ``Stripe-Signature`` header value for ``payload`` (Stripe's t=...,v1=... scheme)."""
        return webhooks.sign(payload, secret, timestamp)

    def webhook_request(
        self, event: dict[str, Any], secret: str, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """``(body, headers)`` for delivering ``event`` to a webhook endpoint."""
        return webhooks.webhook_request(event, secret, timestamp)

    @contextlib.asynccontextmanager
    async def connect(
        self, *, max_network_retries: int = 2, request_timeout: float = 10.0
    ) -> AsyncIterator[stripe.StripeClient]:
        """``async with stripe_api.connect() as client:`` - a client closed on exit."""
        http_client = HTTPXClient(allow_sync_methods=True, timeout=request_timeout)
        try:
            yield self.client(http_client=http_client, max_network_retries=max_network_retries)
        finally:
            http_client.close()
            await http_client.close_async()

    def client(
        self,
        *,
        api_key: str | None = None,
        http_client: stripe.HTTPClient | None = None,
        max_network_retries: int = 2,
        timeout: float = 10.0,
    ) -> stripe.StripeClient:
        """A ``stripe.StripeClient`` for this server.

        Without ``http_client`` it gets its own :class:`.sdk.HTTPXClient` (the SDK's httpx
        transport, minus a DeprecationWarning) which the caller must close; prefer
        :meth:`connect` or the ``stripe_client`` fixture.
        """
        http = http_client or HTTPXClient(allow_sync_methods=True, timeout=timeout)
        return stripe.StripeClient(
            api_key or self.api_key,
            base_addresses={"api": self.url},
            http_client=http,
            max_network_retries=max_network_retries,
        )
