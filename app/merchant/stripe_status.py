"""What the Stripe settings page shows and does: the key check, the webhook endpoint, the sync.

- ``check_key(gateway)``: ``GET /v1/account`` through the gateway's client (within
  ``KEY_CHECK_DEADLINE``): the account's name, or what is wrong, in words for the merchant. The
  mode (test or live) comes from the key's prefix, as Stripe's does. An unreachable Stripe also
  marks billing degraded (``app.billing.health``); an answer clears it.
- ``webhook(settings)``: the endpoint URL to enter in Stripe, whether a signing secret is
  configured, the event types to send, and when the last event arrived.
- ``sync_status(gateway)`` / ``start_sync(...)``: the recorded runs (``StripeSyncRun``) and
  **Sync now** (the gateway's background ``SyncRunner``, audited as ``stripe.sync_started``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import stripe

from app import db
from app.audit import service as audit
from app.billing import stripe_sync
from app.billing.stripe_backfill import STEP_NAMES
from app.billing.stripe_gateway import StripeGateway
from app.billing.stripe_tables import StripeEvent
from app.i18n import gettext as _
from app.settings import Settings

KEY_CHECK_DEADLINE = 5.0  # seconds: the page waits this long for Stripe at most
KeyMode = Literal["test", "live", "unknown"]
# What to select when adding the endpoint in Stripe (the objects the mirror follows).
WEBHOOK_EVENTS = (
    "customer.*",
    "customer.subscription.*",
    "customer.tax_id.*",
    "invoice.*",
    "payment_method.*",
    "product.*",
    "price.*",
    "coupon.*",
    "promotion_code.*",
    "subscription_schedule.*",
)


def env_vars() -> list[tuple[str, str, str]]:
    """The environment variables that turn Stripe mode on: name, value, what it is."""
    return [
        ("PORTICO_BILLING", "stripe", _("Use Stripe instead of the built-in sandbox.")),
        (
            "PORTICO_STRIPE_SECRET_KEY",
            "sk_live_…",
            _("Your secret key, or a restricted key. A key starting with sk_test_ uses test mode."),
        ),
        (
            "PORTICO_STRIPE_WEBHOOK_SECRET",
            "whsec_…",
            _("The signing secret of the webhook endpoint, once you have added it in Stripe."),
        ),
    ]


def key_mode(key: str) -> KeyMode:
    """``test`` or ``live`` from a secret (``sk_``) or restricted (``rk_``) key's prefix."""
    for prefix in ("sk_", "rk_"):
        if key.startswith(f"{prefix}test_"):
            return "test"
        if key.startswith(f"{prefix}live_"):
            return "live"
    return "unknown"


class KeyCheck(msgspec.Struct, frozen=True, kw_only=True):
    mode: KeyMode
    ok: bool
    account_name: str = ""
    account_id: str = ""
    problem: str = ""  # what is wrong, for the merchant


def _account_name(account: dict[str, Any]) -> str:
    dashboard = (account.get("settings") or {}).get("dashboard") or {}
    profile = account.get("business_profile") or {}
    return dashboard.get("display_name") or profile.get("name") or account.get("email") or ""


async def check_key(gateway: StripeGateway) -> KeyCheck:
    mode = key_mode(gateway.settings.stripe_secret_key)
    try:
        async with asyncio.timeout(KEY_CHECK_DEADLINE):
            account = (await gateway.client.v1.accounts.retrieve_current_async()).to_dict()
    except (TimeoutError, stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError):
        gateway.health.failed()
        return KeyCheck(
            mode=mode,
            ok=False,
            problem=_(
                "Stripe could not be reached or did not answer in time. Pages keep working from "
                "the local copy; changes fail until Stripe answers again."
            ),
        )
    except stripe.AuthenticationError:
        gateway.health.recovered()
        return KeyCheck(
            mode=mode,
            ok=False,
            problem=_(
                "Stripe refused the key. Check PORTICO_STRIPE_SECRET_KEY: it may be mistyped, "
                "rolled or revoked."
            ),
        )
    except stripe.PermissionError:
        gateway.health.recovered()
        return KeyCheck(
            mode=mode,
            ok=True,
            problem=_(
                "The key works, but it may not read the account's details (a restricted key). "
                "Make sure it may read and write customers, subscriptions, invoices, payment "
                "methods and Checkout Sessions."
            ),
        )
    except stripe.StripeError as error:
        return KeyCheck(
            mode=mode,
            ok=False,
            problem=_("Stripe answered with an error: %(message)s")
            % {"message": error.user_message or type(error).__name__},
        )
    gateway.health.recovered()
    return KeyCheck(
        mode=mode,
        ok=True,
        account_name=_account_name(account),
        account_id=str(account.get("id") or ""),
    )


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    secret_configured: bool
    events: tuple[str, ...]
    last_received: datetime | None


async def webhook(settings: Settings) -> Webhook:
    last = (
        await StripeEvent.select(StripeEvent.received_at)
        .where(StripeEvent.source == "webhook")
        .order_by(StripeEvent.received_at, ascending=False)
        .first()
    )
    return Webhook(
        url=settings.base_url.rstrip("/") + "/webhooks/stripe",
        secret_configured=bool(settings.stripe_webhook_secret),
        events=WEBHOOK_EVENTS,
        last_received=last["received_at"] if last else None,
    )


def _step_labels() -> dict[str, str]:
    labels = {
        "products": _("Products"),
        "prices": _("Prices"),
        "coupons": _("Coupons"),
        "promotion_codes": _("Promotion codes"),
        "customers": _("Customers"),
        "subscriptions": _("Subscriptions"),
        "subscription_schedules": _("Subscription schedules"),
        "invoices": _("Invoices"),
        "payment_methods": _("Payment methods"),
        "tax_ids": _("Tax IDs"),
    }
    return {name: labels.get(name, name) for name in STEP_NAMES}


def _run_view(row: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    counts = row.get("counts") or {}
    end = row.get("finished_at") or datetime.now(UTC)
    return {
        **row,
        "seconds": max(0, int((end - row["started_at"]).total_seconds())),
        "count_rows": [(labels[name], counts[name]) for name in STEP_NAMES if name in counts],
        "total": sum(int(v) for v in counts.values()),
    }


async def sync_status(gateway: StripeGateway) -> dict[str, Any]:
    """The latest runs, newest first, and whether one is running now."""
    labels = _step_labels()
    runs = [_run_view(row, labels) for row in await stripe_sync.latest_runs(5)]
    latest = runs[0] if runs else None
    running = gateway.syncs.running or (
        latest is not None
        and latest["status"] == "running"
        and latest["heartbeat_at"] > datetime.now(UTC) - stripe_sync.STALE
    )
    return {"runs": runs, "latest": latest, "running": running}


async def start_sync(gateway: StripeGateway, actor: audit.Actor) -> str | None:
    """Start **Sync now** in the background; the run's id, or None if one is running."""
    try:
        run_id = await gateway.syncs.start(actor=actor.email)
    except stripe_sync.SyncBusy:
        return None
    async with db.write():
        await audit.record(
            actor, "stripe.sync_started", object_type="stripe_sync_run", object_id=run_id
        )
    return run_id
