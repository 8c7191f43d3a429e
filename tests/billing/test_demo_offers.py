"""The demo's retention coupon and promotion code, and that the sandbox accepts them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app import clock
from app.billing import demo, demo_offers
from app.billing.sandbox import SandboxGateway
from app.billing.tables import Coupon, Customer, PromotionCode, Subscription, SubscriptionItem
from app.configuration import service
from app.configuration.tables import PortalConfiguration
from app.settings import PROJECT_ROOT, Settings
from tests.billing.sandbox_world import key

NOW = clock.now().replace(microsecond=0)


def test_offers_module_imports_without_pillow():
    """The offers seed needs no image library (the rest of the demo draws its logo with
    Pillow): importing it with PIL blocked must work."""
    code = (
        "import sys; sys.modules['PIL'] = None\n"
        "import app.billing.demo_offers as offers\n"
        "assert 'PIL' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        "print(offers.RETENTION_COUPON)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "STAY20"


async def test_seed_adds_the_offers(db):
    summary = await demo.seed(now=NOW)
    stay = await Coupon.objects().where(Coupon.id == "STAY20").first()
    assert (stay.name, stay.percent_off, stay.duration, stay.duration_in_months) == (
        "20% off for 3 months",
        20,
        "repeating",
        3,
    )
    promo = await PromotionCode.objects().where(PromotionCode.code == "WELCOME10").first()
    welcome = await Coupon.objects().where(Coupon.id == promo.coupon).first()
    assert (welcome.percent_off, welcome.duration, promo.active) == (10, "once", True)
    configuration = await service.get(summary.configuration_id)
    assert service.features(configuration).subscription_cancel.retention_coupon == "STAY20"


async def test_offers_are_added_once_and_to_older_demos(db):
    summary = await demo.seed(now=NOW)
    # A demo seeded before the offers existed: no coupons, no retention coupon.
    await PromotionCode.delete(force=True)
    await Coupon.delete(force=True)
    configuration = await service.get(summary.configuration_id)
    features = service.features(configuration)
    features.subscription_cancel.retention_coupon = None
    await PortalConfiguration.update(
        {PortalConfiguration.features: demo_offers.feature_types.encode(features)}
    ).where(PortalConfiguration.id == configuration.id)

    for _ in range(2):
        again = await demo.seed(now=NOW)
        assert not again.created
    assert await Coupon.count() == 2
    assert await PromotionCode.count() == 1
    configuration = await service.get(summary.configuration_id)
    assert service.features(configuration).subscription_cancel.retention_coupon == "STAY20"


async def test_a_merchants_own_retention_coupon_is_kept(db):
    summary = await demo.seed(now=NOW)
    configuration = await service.get(summary.configuration_id)
    features = service.features(configuration)
    features.subscription_cancel.retention_coupon = "MINE"
    configuration.features = demo_offers.feature_types.encode(features)
    await demo_offers.seed_offers(configuration, NOW)
    features = demo_offers.feature_types.decode(configuration.features)
    assert features.subscription_cancel.retention_coupon == "MINE"


@pytest.mark.usefixtures("db")
async def test_jenny_can_use_the_demo_offers():
    await demo.seed(now=NOW)
    jenny = await Customer.objects().where(Customer.email == "jenny.rosen@example.com").first()
    sub = await Subscription.objects().where(Subscription.customer == jenny.id).first()
    gateway = SandboxGateway(Settings())
    item = await SubscriptionItem.objects().where(SubscriptionItem.subscription == sub.id).first()
    preview = await gateway.preview_subscription_change(
        sub.id,
        price_id=item.price,
        quantity=6,
        proration_behavior="create_prorations",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
        promotion_code="welcome10",
    )
    assert preview.discount_description == "10% off your next invoice"
    await gateway.apply_coupon(sub.id, "STAY20", idempotency_key=key())
    sub = await Subscription.objects().where(Subscription.id == sub.id).first()
    assert sub.discount_coupon == "STAY20"
