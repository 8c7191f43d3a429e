"""Portico in Stripe mode as a subprocess, against the Stripe test server of the test process.

``start()`` does what a merchant does to switch a fresh installation to Stripe:

1. ``portico migrate`` and ``portico stripe sync`` on a fresh SQLite database, with
   ``PORTICO_BILLING=stripe``, the test server's ``sk_test_`` key and URL
   (``PORTICO_STRIPE_API_BASE``) and a webhook signing secret;
2. the portal configuration (business profile, login link on, the features with the synced
   plans), written with Portico's own model as the settings pages would. ``portico demo
   --seed-only`` is no use here: it seeds the *sandbox's* demo customers into an empty mirror (or
   refuses once the sync filled it), so it would mix made-up customers into Stripe's;
3. ``portico serve`` with a real SMTP server (``e2e.support.mailbox``).

``WebhookRelay`` plays Stripe's webhook delivery: every event the test server records after the
sync is signed with the endpoint's secret and POSTed to ``/webhooks/stripe``, in order, from a
background thread (``flush()`` waits until all events so far were delivered). ``with
relay.held():`` holds deliveries back meanwhile (as when Stripe's webhooks are late), so what a
journey sees inside it comes from Portico's own write-through alone.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from e2e.support import server as live
from e2e.support.stripe_world import StripeWorld
from tests.portico_process import spawn_serve
from tests.stripe_api import StripeAPIServer

WEBHOOK_SECRET = "whsec_portico_e2e_stripe_mode"
BUSINESS_NAME = "Acme Cloud"


def stripe_env(
    var_dir: Path, port: int, smtp_port: int, stripe_api: StripeAPIServer
) -> dict[str, str]:
    env = live.server_env(var_dir, port, smtp_port)
    env.update(
        {
            "PORTICO_BILLING": "stripe",
            "PORTICO_STRIPE_SECRET_KEY": stripe_api.api_key,
            "PORTICO_STRIPE_API_BASE": stripe_api.url,
            "PORTICO_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )
    return env


def run_portico(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [live.portico_command(), *args],
        env=env,
        cwd=live.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"portico {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


# -- the merchant's portal configuration ------------------------------------------------------
def portal_features(world: StripeWorld):
    """What the demo offers, with the synced Stripe plans: plan and seat changes (prorated; a
    cheaper plan waits for the period end), cancellation at period end with a reason, cards,
    invoices and billing details."""
    from app.configuration import features as f

    products = [
        f.UpdatableProduct(
            product=product_id,
            prices=[world.price(name, "month"), world.price(name, "year")],
            adjustable_quantity=f.AdjustableQuantity(enabled=name == "Team", maximum=50),
        )
        for name, product_id in world.products.items()
    ]
    return f.Features(
        customer_update=f.CustomerUpdate(
            enabled=True, allowed_updates=["name", "address", "phone", "shipping", "tax_id"]
        ),
        invoice_history=f.InvoiceHistory(enabled=True),
        payment_method_update=f.PaymentMethodUpdate(enabled=True),
        subscription_cancel=f.SubscriptionCancel(
            enabled=True,
            mode="at_period_end",
            cancellation_reason=f.CancellationReason(
                enabled=True, options=list(f.CANCELLATION_REASONS)
            ),
        ),
        subscription_update=f.SubscriptionUpdate(
            enabled=True,
            default_allowed_updates=["price", "quantity", "promotion_code"],
            products=products,
            proration_behavior="create_prorations",
            schedule_at_period_end_conditions=["decreasing_item_amount"],
            trial_update_behavior="end_trial",
        ),
    )


async def _insert_configuration(database_url: str, world: StripeWorld) -> str:
    from app import clock, db
    from app.configuration import features, service
    from app.configuration.tables import PortalConfiguration

    engine = db.make_engine(database_url)
    db.bind(engine)
    await db.start(engine)
    try:
        now = clock.now()
        configuration = PortalConfiguration(
            id=service.new_configuration_id(),
            name="Default",
            is_default=True,
            active=True,
            login_page_enabled=True,
            login_page_token=service.new_login_token(),
            business_name=BUSINESS_NAME,
            headline="Manage your Acme Cloud plan, payment details and invoices.",
            features=features.encode(portal_features(world)),
            created=now,
            updated=now,
        )
        async with db.write():
            await PortalConfiguration.insert(configuration)
        return service.login_path(configuration)
    finally:
        await db.stop(engine)


def create_configuration(database_url: str, world: StripeWorld) -> str:
    """The default configuration; returns its login path. Runs its own event loop in a thread
    (the browser fixtures may already drive one in this thread)."""
    found: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            found.append(asyncio.run(_insert_configuration(database_url, world)))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="portico-configuration")
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]
    return found[0]


# -- webhooks ---------------------------------------------------------------------------------
@dataclass
class WebhookRelay:
    """Delivers the test server's events to Portico's webhook endpoint, like Stripe does."""

    stripe_api: StripeAPIServer
    endpoint: str
    secret: str = WEBHOOK_SECRET
    delivered: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _hold: threading.Event = field(default_factory=threading.Event)
    _delivering: threading.Lock = field(default_factory=threading.Lock)
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self, *, after: int) -> None:
        """Deliver every event from index ``after`` on (earlier ones are reflected by the
        sync)."""
        self.delivered = after
        self._thread = threading.Thread(target=self._run, name="stripe-webhooks", daemon=True)
        self._thread.start()

    def _deliver(self, event: dict) -> None:
        body, headers = self.stripe_api.webhook_request(event, self.secret)
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            headers={**headers, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                if response.status != 200:
                    self.failures.append(f"{event['type']} {event['id']}: {response.status}")
        except (urllib.error.URLError, OSError) as error:
            self.failures.append(f"{event['type']} {event['id']}: {error}")

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._delivering:
                events = self.stripe_api.events
                due = not self._hold.is_set() and self.delivered < len(events)
                if due:
                    self._deliver(events[self.delivered])
                    with self._idle:
                        self.delivered += 1
                        self._idle.notify_all()
            if not due:
                self._stop.wait(0.05)

    @contextmanager
    def held(self) -> Iterator[None]:
        """No deliveries inside (one under way when it starts finishes first); afterwards the
        held events go out in order."""
        if self._hold.is_set():
            raise RuntimeError("webhook deliveries are already held")
        self._hold.set()
        with self._delivering:
            pass
        try:
            yield
        finally:
            self._hold.clear()

    def flush(self, timeout: float = 20.0) -> None:
        """Until every event recorded so far was delivered."""
        if self._hold.is_set():
            raise RuntimeError("flush() while deliveries are held would never finish")
        target = len(self.stripe_api.events)
        deadline = time.monotonic() + timeout
        with self._idle:
            while self.delivered < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"webhooks not delivered in {timeout:.0f} s")
                self._idle.wait(left)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(20)


# -- the server -------------------------------------------------------------------------------
@dataclass
class StripePortico:
    server: live.LiveServer
    env: dict[str, str]
    relay: WebhookRelay
    sync_output: str


def start(
    var_dir: Path, smtp_port: int, stripe_api: StripeAPIServer, world: StripeWorld
) -> StripePortico:
    port = live.free_port()
    env = stripe_env(var_dir, port, smtp_port, stripe_api)
    run_portico(env, "migrate")
    sync_output = run_portico(env, "stripe", "sync")
    db_path = var_dir / "e2e.sqlite3"
    login_path = create_configuration(env["PORTICO_DATABASE_URL"], world)
    log_path = var_dir / "server.log"
    with log_path.open("wb") as log:
        process = spawn_serve(env, port, log)
    server = live.LiveServer(
        base_url=env["PORTICO_BASE_URL"],
        login_path=login_path,
        db_path=db_path,
        log_path=log_path,
        process=process,
    )
    relay = WebhookRelay(stripe_api, f"{server.base_url}/webhooks/stripe")
    try:
        live.wait_until_up(server)
        relay.start(after=len(stripe_api.events))
    except BaseException:
        live.stop(server)
        raise
    return StripePortico(server=server, env=env, relay=relay, sync_output=sync_output)


def stop(portico: StripePortico) -> None:
    portico.relay.stop()
    live.stop(portico.server)
