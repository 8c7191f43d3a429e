"""A small billing world for the sandbox gateway tests, at a fixed time.

Catalogue: Starter ($9 / $90), Team ($29 / $290 per seat), Business ($99 / $990), monthly and
yearly. One customer, Jenny, with Visa 4242 as default and a Team monthly subscription for 5 seats
whose current period is 1 Mar 2026 → 31 Mar 2026 (30 days). ``NOW`` is day 10 of that period, so
the unused fraction of the period is 20/30.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app import clock
from app.billing.gateway import CardInput
from app.billing.proration import TIMES
from app.billing.sandbox import SandboxGateway
from app.billing.tables import (
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    PromotionCode,
    Subscription,
    SubscriptionItem,
)
from app.settings import Settings

PERIOD_START = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 3, 31, tzinfo=UTC)
NOW = PERIOD_START + timedelta(days=10)
PLANS = {
    "starter": ("Starter", 900, 9000),
    "team": ("Team", 2900, 29000),
    "business": ("Business", 9900, 99000),
}

_keys = itertools.count(1)


def key() -> str:
    """A fresh idempotency key."""
    return f"test_key_{next(_keys):08d}"


def card(
    number: str = "4242424242424242", *, cvc: str = "123", month: int = 12, year: int = 2030
) -> CardInput:
    return CardInput(number=number, exp_month=month, exp_year=year, cvc=cvc, name="Jenny Rosen")


@dataclass
class World:
    gateway: SandboxGateway
    customer: str
    card: str
    subscription: str
    item: str
    prices: dict[str, str]  # "team_month" → price id
    invoice: str  # the subscription's paid invoice for the current period

    async def sub(self) -> Subscription:
        found = await Subscription.objects().where(Subscription.id == self.subscription).first()
        assert found is not None
        return found

    async def sub_item(self) -> SubscriptionItem:
        found = await SubscriptionItem.objects().where(SubscriptionItem.id == self.item).first()
        assert found is not None
        return found


async def build_world(
    *,
    plan: str = "team",
    interval: str = "month",
    quantity: int = 5,
    status: str = "active",
    with_card: bool = True,
) -> World:
    prices: dict[str, str] = {}
    for name, (label, monthly, yearly) in PLANS.items():
        product = Product(
            id=f"prod_{name}", name=label, unit_label="seat" if name == "team" else None
        )
        await Product.insert(product)
        for every, amount in (("month", monthly), ("year", yearly)):
            price = Price(
                id=f"price_{name}_{every}",
                product=product.id,
                currency="usd",
                unit_amount=amount,
                recurring_interval=every,
                recurring_interval_count=1,
                recurring_usage_type="licensed",
                tax_behavior="exclusive",
            )
            await Price.insert(price)
            prices[f"{name}_{every}"] = price.id
    customer = Customer(
        id="cus_jenny",
        email="jenny.rosen@example.com",
        name="Jenny Rosen",
        currency="usd",
        address_line1="510 Townsend St",
        address_city="San Francisco",
        address_state="CA",
        address_postal_code="94103",
        address_country="US",
        time_zone="UTC",
        created=PERIOD_START - timedelta(days=200),
    )
    await Customer.insert(customer)
    pm_id = ""
    if with_card:
        pm = PaymentMethod(
            id="pm_visa4242",
            customer=customer.id,
            card_brand="visa",
            card_last4="4242",
            card_exp_month=12,
            card_exp_year=2030,
            card_funding="credit",
            card_country="US",
        )
        await PaymentMethod.insert(pm)
        pm_id = pm.id
        await Customer.update({Customer.invoice_settings_default_payment_method: pm.id}).where(
            Customer.id == customer.id
        )
    trialing = status == "trialing"
    sub = Subscription(
        id="sub_jenny",
        customer=customer.id,
        status=status,
        currency="usd",
        created=PERIOD_START - timedelta(days=120),
        start_date=PERIOD_START - timedelta(days=120),
        current_period_start=PERIOD_START,
        current_period_end=PERIOD_END,
        billing_cycle_anchor=PERIOD_START,
        trial_start=PERIOD_START if trialing else None,
        trial_end=PERIOD_END if trialing else None,
    )
    await Subscription.insert(sub)
    price_id = prices[f"{plan}_{interval}"]
    item = SubscriptionItem(
        id="si_jenny",
        subscription=sub.id,
        price=price_id,
        quantity=quantity,
        current_period_start=PERIOD_START,
        current_period_end=PERIOD_END,
    )
    await SubscriptionItem.insert(item)
    label, monthly, _ = PLANS[plan]
    amount = 0 if trialing else monthly * quantity
    invoice = Invoice(
        id="in_current",
        customer=customer.id,
        subscription=sub.id,
        number="ACME-0001-0004",
        status="paid",
        currency="usd",
        subtotal=amount,
        total=amount,
        amount_due=amount,
        amount_paid=amount,
        amount_remaining=0,
        billing_reason="subscription_cycle",
        created=PERIOD_START,
        period_start=PERIOD_START,
        period_end=PERIOD_END,
        status_transitions_paid_at=PERIOD_START,
    )
    await Invoice.insert(invoice)
    await InvoiceLine.insert(
        InvoiceLine(
            id="il_current",
            invoice=invoice.id,
            description=f"{quantity} {TIMES} {label}",
            amount=amount,
            currency="usd",
            quantity=quantity,
            price=price_id,
            period_start=PERIOD_START,
            period_end=PERIOD_END,
        )
    )
    await Subscription.update({Subscription.latest_invoice: invoice.id}).where(
        Subscription.id == sub.id
    )
    settings = Settings(secret_key="x" * 48)
    return World(SandboxGateway(settings), customer.id, pm_id, sub.id, item.id, prices, invoice.id)


async def add_coupon(
    coupon_id: str,
    *,
    percent_off: int | None = None,
    amount_off: int | None = None,
    duration: str = "once",
    code: str | None = None,
    **promo: object,
) -> None:
    await Coupon.insert(
        Coupon(
            id=coupon_id,
            name=None,
            percent_off=percent_off,
            amount_off=amount_off,
            currency="usd" if amount_off else None,
            duration=duration,
            duration_in_months=3 if duration == "repeating" else None,
        )
    )
    if code:
        await PromotionCode.insert(
            PromotionCode(id=f"promo_{coupon_id}", code=code, coupon=coupon_id, **promo)
        )


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Freeze ``clock.now`` at NOW (day 10 of the 30-day period)."""
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


@pytest.fixture
async def world(db, frozen_now) -> World:
    return await build_world()
