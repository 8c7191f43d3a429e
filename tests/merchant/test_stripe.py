"""The Stripe settings page: sandbox instructions, the key check, the webhook endpoint, and
**Sync now** running in the background (recorded runs, one at a time, audited)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import msgspec
import pytest

from app.billing.demo import DemoSummary
from app.billing.health import billing_notice
from app.billing.stripe_gateway import StripeGateway
from app.billing.stripe_tables import StripeEvent, StripeSyncRun
from app.billing.tables import Customer, Price
from app.settings import Settings
from tests.helpers import HX
from tests.merchant.support import Merchant, events, open_merchant, signed_in
from tests.stripe_api import StripeAPIServer
from tests.stripe_api.fixtures import stripe_api  # noqa: F401  (fixture)
from tests.test_i18n import _untranslated, pseudo_locale  # noqa: F401  (fixture)

PAGE = "/merchant/stripe"
WEBHOOK_SECRET = "whsec_merchant_page_test"


def stripe_settings(settings: Settings, server: StripeAPIServer, **changes: object) -> Settings:
    values: dict[str, object] = {
        "billing": "stripe",
        "stripe_secret_key": server.api_key,
        "stripe_api_base": server.url,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        **changes,
    }
    return msgspec.structs.replace(settings, **values)


@asynccontextmanager
async def stripe_merchant(
    settings: Settings, summary: DemoSummary, server: StripeAPIServer, **changes: object
) -> AsyncIterator[Merchant]:
    async with open_merchant(stripe_settings(settings, server, **changes), summary) as merchant:
        await signed_in(merchant)
        yield merchant


def gateway_of(merchant: Merchant) -> StripeGateway:
    gateway = merchant.portal.app.state.gateway
    assert isinstance(gateway, StripeGateway)
    return gateway


def seed_catalog(server: StripeAPIServer) -> None:
    product = server.create_product(name="Team")
    server.create_price(
        product=product["id"], currency="usd", unit_amount=1000, recurring={"interval": "month"}
    )
    customer = server.create_customer(email="ada@example.test", name="Ada")
    server.create_payment_method(customer["id"], card="pm_card_visa", default=True)


# -- access and sandbox mode ---------------------------------------------------------------------
async def test_the_page_needs_a_merchant_session(merchant):
    response = await merchant.client.get(PAGE)
    assert response.status_code == 303
    assert response.headers["location"] == "/merchant/sign-in?next=/merchant/stripe"
    refused = await merchant.post(f"{PAGE}/sync")
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/merchant/sign-in")


async def test_sandbox_mode_says_stripe_is_not_in_use_and_how_to_turn_it_on(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(PAGE)
    assert response.status_code == 200
    html = response.text
    assert "Stripe is not in use" in html
    for name in ("PORTICO_BILLING", "PORTICO_STRIPE_SECRET_KEY", "PORTICO_STRIPE_WEBHOOK_SECRET"):
        assert f"<td><code>{name}</code></td>" in html
    assert "portico stripe sync" in html
    assert 'href="/merchant/stripe" aria-current="page"' in html
    assert ">Sync now</button>" not in html

    refused = await merchant.post(f"{PAGE}/sync")
    assert refused.status_code == 303
    page = await merchant.client.get(PAGE)
    assert "Stripe is not in use, so there is nothing to sync." in page.text
    assert await StripeSyncRun.count() == 0


# -- Stripe mode -------------------------------------------------------------------------------
async def test_key_check_webhook_and_no_sync_yet(settings, shop, account, stripe_api):  # noqa: F811
    now = datetime.now(UTC)
    await StripeEvent.insert(StripeEvent(id="evt_1", type="customer.updated", created=now))
    async with stripe_merchant(settings, shop, stripe_api) as merchant:
        response = await merchant.client.get(PAGE)
    assert response.status_code == 200
    html = response.text
    assert "Test mode" in html
    assert "Connected to the Stripe account Portico Test (acct_" in html
    assert 'value="http://portal.test/webhooks/stripe"' in html
    assert '<dd id="webhook-secret">Set</dd>' in html
    assert "<code>invoice.*</code>" in html
    assert "None yet" not in html  # the event above
    assert "No sync has run yet." in html
    assert ">Sync now</button>" in html
    assert [r.path for r in stripe_api.requests] == ["/v1/account"]


async def test_a_refused_key_and_a_missing_webhook_secret_are_explained(
    settings,
    shop,
    account,
    stripe_api,  # noqa: F811
):
    async with stripe_merchant(
        settings, shop, stripe_api, stripe_secret_key="sk_live_wrong", stripe_webhook_secret=""
    ) as merchant:
        html = (await merchant.client.get(PAGE)).text
    assert "Live mode" in html
    assert "Stripe refused the key. Check PORTICO_STRIPE_SECRET_KEY" in html
    assert "Connected to" not in html
    assert '<dd id="webhook-secret">Not set</dd>' in html
    assert "Portico refuses every webhook until PORTICO_STRIPE_WEBHOOK_SECRET" in html


async def test_an_unreachable_stripe_is_explained_and_marks_billing_degraded(
    settings,
    shop,
    account,
    stripe_api,  # noqa: F811
):
    stripe_api.inject_fault("/v1/account", status=503, times=None)
    async with stripe_merchant(settings, shop, stripe_api) as merchant:
        html = (await merchant.client.get(PAGE)).text
        assert "Stripe could not be reached or did not answer in time." in html
        assert gateway_of(merchant).health.degraded
        stripe_api.clear_faults()
        html = (await merchant.client.get(PAGE)).text
        assert "Connected to the Stripe account Portico Test" in html
        assert not gateway_of(merchant).health.degraded


async def test_sync_now_runs_in_the_background_and_records_the_run(
    settings,
    shop,
    account,
    stripe_api,  # noqa: F811
):
    seed_catalog(stripe_api)
    async with stripe_merchant(settings, shop, stripe_api) as merchant:
        response = await merchant.post(f"{PAGE}/sync")
        assert response.status_code == 303
        assert response.headers["location"] == PAGE
        await gateway_of(merchant).syncs.wait()
        html = (await merchant.client.get(PAGE)).text
    assert "The sync started. It runs in the background" in html
    assert "Finished" in html
    assert '<td>Customers</td><td class="num">1</td>' in html
    [run] = await StripeSyncRun.select().output(load_json=True)
    assert run["status"] == "succeeded"
    assert run["trigger"] == "merchant"
    assert run["actor"] == account.email
    assert run["finished_at"] is not None
    assert run["counts"]["customers"] == 1
    assert run["counts"]["prices"] == 1
    assert run["counts"]["payment_methods"] == 1
    assert await Customer.exists().where(Customer.email == "ada@example.test")
    assert await Price.count() == 1
    [started] = await events("stripe.sync_started")
    assert started["object_id"] == run["id"]
    assert started["actor_email"] == account.email


async def test_one_sync_at_a_time_and_the_page_shows_it_running(
    settings,
    shop,
    account,
    stripe_api,  # noqa: F811
):
    seed_catalog(stripe_api)
    stripe_api.inject_fault("/v1/customers", delay_seconds=1.0, times=1, method="GET")
    async with stripe_merchant(settings, shop, stripe_api) as merchant:
        first = await merchant.post(f"{PAGE}/sync", htmx=True)
        assert first.status_code == 200
        assert json.loads(first.headers["HX-Location"])["path"] == PAGE
        running = await merchant.client.get(PAGE, headers=HX)
        assert "Running" in running.text
        assert "Reload this page to follow it" in running.text
        assert ">Sync now</button>" not in running.text
        second = await merchant.post(f"{PAGE}/sync")
        assert second.status_code == 303
        busy = await merchant.client.get(PAGE)
        assert "A sync is already running." in busy.text
        await gateway_of(merchant).syncs.wait()
        done = await merchant.client.get(PAGE)
        assert "Finished" in done.text
    assert await StripeSyncRun.count() == 1
    assert len(await events("stripe.sync_started")) == 1


async def test_a_failed_sync_shows_why(settings, shop, account, stripe_api):  # noqa: F811
    stripe_api.inject_fault("/v1/products", status=401, times=None, method="GET")
    async with stripe_merchant(settings, shop, stripe_api) as merchant:
        await merchant.post(f"{PAGE}/sync")
        await gateway_of(merchant).syncs.wait()
        html = (await merchant.client.get(PAGE)).text
    assert "Failed" in html
    assert "Stripe refused the API key (PORTICO_STRIPE_SECRET_KEY)." in html
    [run] = await StripeSyncRun.select()
    assert run["status"] == "failed"


async def test_shutdown_interrupts_a_running_sync(
    settings,
    shop,
    account,
    stripe_api,  # noqa: F811
):
    seed_catalog(stripe_api)
    stripe_api.inject_fault("/v1/products", delay_seconds=5.0, times=1, method="GET")
    async with stripe_merchant(settings, shop, stripe_api) as merchant:
        await merchant.post(f"{PAGE}/sync")
        assert gateway_of(merchant).syncs.running
    [run] = await StripeSyncRun.select()
    assert run["status"] == "interrupted"
    assert run["finished_at"] is not None


@pytest.mark.parametrize("degraded", [False, True])
async def test_billing_notice_follows_the_gateway_health(
    settings,
    shop,
    account,
    stripe_api,  # noqa: F811
    degraded: bool,
):
    async with stripe_merchant(settings, shop, stripe_api) as merchant:
        app = merchant.portal.app
        if degraded:
            gateway_of(merchant).health.failed()

        class Request:
            pass

        request = Request()
        request.app = app  # type: ignore[attr-defined]
        notice = billing_notice(request)  # type: ignore[arg-type]
    if degraded:
        assert notice == (
            "Billing is temporarily unreachable: you can look around, but changes may fail."
        )
    else:
        assert notice is None


# Shown as data on the page: variable names and values, the command, event types, the account,
# counts and object ids.
DATA = re.compile(
    r"^(PORTICO_\w+|stripe|sk_live_…|whsec_…|portico stripe sync"
    r"|[a-z_.]+\.\*|Portico Test|acct_\w+|Acme Cloud|\d+|[\w.+-]+@[\w.-]+"
    r"|\d+ \w{3} \d{4}, \d\d:\d\d UTC)$"
)


async def test_the_page_has_no_untranslated_text(
    merchant,
    settings,
    shop,
    account,
    stripe_api,  # noqa: F811
    pseudo_locale,  # noqa: F811
):
    await signed_in(merchant)
    sandbox = await merchant.client.get(PAGE)
    assert [t for t in _untranslated(sandbox.text) if not DATA.match(t)] == []
    seed_catalog(stripe_api)
    async with stripe_merchant(settings, shop, stripe_api) as stripe_mode:
        await stripe_mode.post(f"{PAGE}/sync")
        await gateway_of(stripe_mode).syncs.wait()
        await stripe_mode.post(f"{PAGE}/sync")
        await gateway_of(stripe_mode).syncs.wait()
        page = await stripe_mode.client.get(PAGE)
    assert "Earlier syncs" in page.text or "⟦Earlier syncs⟧" in page.text
    assert [t for t in _untranslated(page.text) if not DATA.match(t)] == []
