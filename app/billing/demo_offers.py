"""The demo merchant's discounts: the retention coupon offered before a cancellation (``STAY20``)
and a promotion code customers can type when they change plans (``WELCOME10``).

``seed_offers`` is idempotent (it adds what is missing and leaves the rest) and needs no image
library, so it can also run on a database seeded before these offers existed.
"""

from __future__ import annotations

from datetime import datetime

from app.billing.tables import Coupon, PromotionCode
from app.configuration import features as feature_types
from app.configuration.tables import PortalConfiguration

RETENTION_COUPON = "STAY20"
WELCOME_COUPON = "WELCOME10-once"
WELCOME_CODE = "WELCOME10"
WELCOME_PROMOTION = "promo_WELCOME10demo"


def coupons(now: datetime) -> list[Coupon]:
    return [
        Coupon(
            id=RETENTION_COUPON,
            name="20% off for 3 months",
            percent_off=20,
            duration="repeating",
            duration_in_months=3,
            valid=True,
            created=now,
            metadata={},
        ),
        Coupon(
            id=WELCOME_COUPON,
            name="10% off your next invoice",
            percent_off=10,
            duration="once",
            valid=True,
            created=now,
            metadata={},
        ),
    ]


async def seed_offers(configuration: PortalConfiguration | None, now: datetime) -> None:
    """Add the demo coupons and promotion code when missing, and make ``STAY20`` the
    configuration's retention coupon unless one is set. Call inside the seed's transaction."""
    existing = {row["id"] for row in await Coupon.select(Coupon.id)}
    missing = [coupon for coupon in coupons(now) if coupon.id not in existing]
    if missing:
        await Coupon.insert(*missing)
    if not await PromotionCode.exists().where(PromotionCode.id == WELCOME_PROMOTION):
        await PromotionCode.insert(
            PromotionCode(
                id=WELCOME_PROMOTION,
                code=WELCOME_CODE,
                coupon=WELCOME_COUPON,
                active=True,
                created=now,
            )
        )
    if configuration is None:
        return
    features = feature_types.decode(configuration.features)
    if features.subscription_cancel.retention_coupon:
        return
    features.subscription_cancel.retention_coupon = RETENTION_COUPON
    configuration.features = feature_types.encode(features)
    await PortalConfiguration.update({PortalConfiguration.features: configuration.features}).where(
        PortalConfiguration.id == configuration.id
    )
