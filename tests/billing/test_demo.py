from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from datetime import timedelta

import pytest
from PIL import Image

from app import clock
from app.billing import demo
from app.billing.tables import (
    Customer,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    TaxId,
)
from app.configuration import service
from app.configuration.tables import BrandAsset, PortalConfiguration
from app.piccolo_app import APP_CONFIG

NOW = clock.now().replace(microsecond=0)
BILLING_TABLES = (
    Product,
    Price,
    Customer,
    PaymentMethod,
    TaxId,
    Subscription,
    SubscriptionItem,
    Invoice,
    InvoiceLine,
)
PREFIXES = {
    Product: "prod_",
    Price: "price_",
    Customer: "cus_",
    PaymentMethod: "pm_",
    TaxId: "txi_",
    Subscription: "sub_",
    SubscriptionItem: "si_",
    Invoice: "in_",
    InvoiceLine: "il_",
}


async def _counts() -> dict[str, int]:
    tables = (*BILLING_TABLES, BrandAsset, PortalConfiguration)
    return {table.__name__: await table.count() for table in tables}


async def _empty() -> None:
    for table in reversed(APP_CONFIG.table_classes):
        await table.delete(force=True)


async def _customer(name: str) -> Customer:
    customer = await Customer.objects().where(Customer.name == name).first()
    assert customer is not None, name
    return customer


async def test_seed_is_idempotent(db):
    first = await demo.seed(now=NOW)
    counts = await _counts()
    second = await demo.seed(now=NOW)
    assert first.created
    assert not second.created
    assert second.configuration_id == first.configuration_id
    assert second.login_path == first.login_path
    assert await _counts() == counts
    assert 35 <= counts["Customer"] <= 45
    assert counts["PortalConfiguration"] == 1
    assert counts["BrandAsset"] == 2


async def test_seed_is_deterministic_apart_from_the_login_token(db):
    first = await demo.seed(now=NOW)
    ids = {t.__name__: sorted(r["id"] for r in await t.select(t.id)) for t in BILLING_TABLES}
    await _empty()
    second = await demo.seed(now=NOW)
    again = {t.__name__: sorted(r["id"] for r in await t.select(t.id)) for t in BILLING_TABLES}
    assert again == ids
    assert second.login_path != first.login_path


async def test_seed_refuses_a_database_with_other_billing_data(db):
    await Customer.insert(Customer(id="cus_existing", email="x@example.com"))
    with pytest.raises(demo.NotEmptyError):
        await demo.seed()


async def test_summary_and_configuration(db):
    summary = await demo.seed(now=NOW)
    assert summary.business_name == "Acme Cloud"
    assert re.fullmatch(r"/p/login/[A-Za-z0-9_-]{32}", summary.login_path)
    assert summary.customer_emails == list(demo.SCRIPTED_EMAILS)
    assert "jenny.rosen@example.com" in summary.customer_emails

    configuration = await service.by_login_token(summary.login_path.rsplit("/", 1)[1])
    assert configuration is not None
    assert configuration.id == summary.configuration_id
    assert configuration.is_default
    assert (configuration.brand_color, configuration.accent_color) == ("#4f46e5", "#0e7490")
    assert configuration.default_return_url == "https://acme.example.com/account"
    assert configuration.privacy_policy_url.startswith("https://acme.example.com/")
    assert configuration.terms_of_service_url.startswith("https://acme.example.com/")

    features = service.features(configuration)
    assert features.subscription_update.enabled
    assert not features.subscription_pause.enabled
    assert features.customer_update.allowed_updates == [
        "name",
        "address",
        "phone",
        "shipping",
        "tax_id",
    ]
    assert len(features.subscription_cancel.cancellation_reason.options) == 8
    assert features.subscription_update.proration_behavior == "create_prorations"
    products = {p.product: p for p in features.subscription_update.products}
    assert len(products) == 3
    team = await Product.objects().where(Product.name == "Team").first()
    assert products[team.id].adjustable_quantity.enabled
    assert products[team.id].adjustable_quantity.maximum == 50
    price_ids = {r["id"] for r in await Price.select(Price.id)}
    assert {p for u in products.values() for p in u.prices} == price_ids

    for asset_id, size in ((configuration.logo, (512, 128)), (configuration.icon, (256, 256))):
        asset = await BrandAsset.objects().where(BrandAsset.id == asset_id).first()
        assert asset.id == hashlib.sha256(asset.data).hexdigest()
        assert (asset.width, asset.height) == size
        assert Image.open(io.BytesIO(asset.data)).size == size


async def test_catalogue(db):
    await demo.seed(now=NOW)
    prices = await Price.select(
        Price.product.name, Price.unit_amount, Price.recurring_interval, Price.tax_behavior
    )
    assert {(p["product.name"], p["recurring_interval"], p["unit_amount"]) for p in prices} == {
        ("Starter", "month", 900),
        ("Starter", "year", 9000),
        ("Team", "month", 2900),
        ("Team", "year", 29000),
        ("Business", "month", 9900),
        ("Business", "year", 99000),
    }
    assert {p["tax_behavior"] for p in prices} == {"exclusive"}


async def test_ids_have_stripe_prefixes(db):
    await demo.seed(now=NOW)
    for table, prefix in PREFIXES.items():
        ids = [r["id"] for r in await table.select(table.id)]
        assert ids, table
        assert all(re.fullmatch(rf"{prefix}[A-Za-z0-9]{{14,24}}", i) for i in ids), table


async def test_subscription_periods_are_consistent(db):
    await demo.seed(now=NOW)
    subs = await Subscription.select()
    items = {i["subscription"]: i for i in await SubscriptionItem.select()}
    statuses = Counter(s["status"] for s in subs)
    assert statuses["active"] >= 20
    assert statuses["past_due"] >= 1
    assert statuses["canceled"] >= 4
    for sub in subs:
        item = items[sub["id"]]
        assert (item["current_period_start"], item["current_period_end"]) == (
            sub["current_period_start"],
            sub["current_period_end"],
        )
        if sub["status"] == "canceled":
            assert sub["current_period_start"] <= sub["ended_at"] <= sub["current_period_end"]
        else:
            assert sub["current_period_start"] <= NOW < sub["current_period_end"], sub["id"]
    ended = [NOW - s["ended_at"] for s in subs if s["status"] == "canceled"]
    assert sum(e < timedelta(days=60) for e in ended) >= 2
    assert sum(e > timedelta(days=90) for e in ended) >= 2


async def test_invoices_are_consistent(db):
    await demo.seed(now=NOW)
    invoices = await Invoice.select()
    lines = await InvoiceLine.select(InvoiceLine.invoice, InvoiceLine.amount)
    numbers = [i["number"] for i in invoices]
    assert all(re.fullmatch(r"ACME-\d{4}-\d{4}", n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    totals = Counter()
    for line in lines:
        totals[line["invoice"]] += line["amount"]
    statuses = Counter(i["status"] for i in invoices)
    assert statuses["open"] >= 2
    assert statuses["void"] >= 1
    assert statuses["uncollectible"] >= 1
    for invoice in invoices:
        assert invoice["total"] == totals[invoice["id"]]
        assert invoice["created"] <= NOW
        if invoice["status"] == "paid":
            assert invoice["amount_paid"] == invoice["total"]
            assert invoice["status_transitions_paid_at"] is not None
    assert await TaxId.count().where(TaxId.type == "eu_vat") >= 2


async def test_scripted_customers(db):
    await demo.seed(now=NOW)

    jenny = await _customer("Jenny Rosen")
    assert jenny.email == "jenny.rosen@example.com"
    assert jenny.address_country == "US"
    card = (
        await PaymentMethod.objects()
        .where(PaymentMethod.id == jenny.invoice_settings_default_payment_method)
        .first()
    )
    assert (card.card_brand, card.card_last4, card.customer) == ("visa", "4242", jenny.id)
    invoices = await Invoice.select().where(Invoice.customer == jenny.id)
    assert sum(i["status"] == "paid" for i in invoices) >= 6
    [open_invoice] = [i for i in invoices if i["status"] == "open"]
    assert open_invoice["amount_due"] > 0
    assert open_invoice["due_date"] > NOW
    [sub] = await Subscription.select().where(Subscription.customer == jenny.id)
    [item] = await SubscriptionItem.select(
        SubscriptionItem.quantity, SubscriptionItem.price.product.name
    ).where(SubscriptionItem.subscription == sub["id"])
    assert (sub["status"], item["quantity"], item["price.product.name"]) == ("active", 5, "Team")

    older, newer = await _customer("Sam Older"), await _customer("Sam Newer")
    assert older.email == newer.email == "sam.shared@example.com"
    assert older.created < newer.created
    assert [s["status"] for s in await Subscription.select().where(
        Subscription.customer == older.id
    )] == ["active"]  # fmt: skip
    assert await Subscription.count().where(Subscription.customer == newer.id) == 0
    newer_invoices = await Invoice.select().where(Invoice.customer == newer.id)
    assert [(i["status"], i["subscription"]) for i in newer_invoices] == [("paid", None)]

    pat = await _customer("Pat Trial")
    [trial] = await Subscription.select().where(Subscription.customer == pat.id)
    assert trial["status"] == "trialing"
    assert trial["trial_end"] - NOW == timedelta(days=10)
    assert pat.invoice_settings_default_payment_method is not None

    lee = await _customer("Lee Canceling")
    [canceling] = await Subscription.select().where(Subscription.customer == lee.id)
    assert canceling["status"] == "active"
    assert canceling["cancel_at_period_end"]
    assert canceling["cancel_at"] == canceling["current_period_end"]

    max_ = await _customer("Max Noplan")
    assert max_.email == "max.noplan@example.com"
    assert max_.invoice_settings_default_payment_method is None
    assert await PaymentMethod.count().where(PaymentMethod.customer == max_.id) == 0
    assert await Subscription.count().where(Subscription.customer == max_.id) == 0
    max_invoices = await Invoice.select().where(Invoice.customer == max_.id)
    assert len(max_invoices) >= 2
    assert {i["status"] for i in max_invoices} == {"paid"}


async def test_cards_on_file_expire_in_the_future(db):
    await demo.seed(now=NOW)
    cards = await PaymentMethod.select()
    assert {c["card_brand"] for c in cards} == {"visa", "mastercard", "amex"}
    assert all((c["card_exp_year"], c["card_exp_month"]) > (NOW.year, NOW.month) for c in cards)
    with_card = await Customer.count().where(
        Customer.invoice_settings_default_payment_method.is_not_null()
    )
    assert with_card >= 30
