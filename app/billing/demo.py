"""The demo merchant, "Acme Cloud": a portal configuration with branding and features, a catalogue
of three plans, and about forty customers with believable billing histories.

``seed()`` fills an empty database in one write transaction and does nothing when a default portal
configuration already exists. Apart from the login token, the data comes from a seeded RNG and the
given ``now``, so it is the same every time.
"""

from __future__ import annotations

import hashlib
import io
import random
from datetime import UTC, datetime

import msgspec
from PIL import Image, ImageDraw, ImageFont

from app import clock, db
from app.billing.demo_data import DemoRows
from app.billing.demo_offers import seed_offers
from app.billing.demo_stories import SCRIPTED_EMAILS, build
from app.billing.tables import Customer, Product
from app.configuration import features as feature_types
from app.configuration import service
from app.configuration.tables import BrandAsset, PortalConfiguration

BUSINESS_NAME = "Acme Cloud"
BRAND_COLOR = "#4f46e5"
ACCENT_COLOR = "#0e7490"
DEMO_NOTES = "Demo data created by `portico demo`."
INSERT_BATCH = 250  # rows per INSERT: well under SQLite's and PostgreSQL's parameter limits


class DemoSummary(msgspec.Struct, frozen=True, kw_only=True):
    login_path: str
    configuration_id: str
    business_name: str
    customer_emails: list[str]
    created: bool  # False when the demo (or another default configuration) was already there


class NotEmptyError(RuntimeError):
    """Billing data exists but no default portal configuration: refuse to mix in demo data."""


def _summary(configuration: PortalConfiguration, created: bool) -> DemoSummary:
    return DemoSummary(
        login_path=service.login_path(configuration),
        configuration_id=configuration.id,
        business_name=configuration.business_name,
        customer_emails=list(SCRIPTED_EMAILS),
        created=created,
    )


# --- branding ----------------------------------------------------------------------------------


def _mark(draw: ImageDraw.ImageDraw, left: int, top: int, size: int) -> None:
    """A rounded indigo tile with a white cloud and a teal baseline."""
    s = size / 100
    draw.rounded_rectangle(
        (left, top, left + size, top + size), radius=int(22 * s), fill=BRAND_COLOR
    )
    white = "#ffffff"
    for cx, cy, r in ((36, 58, 14), (54, 46, 20), (71, 59, 13)):
        draw.ellipse(
            (left + (cx - r) * s, top + (cy - r) * s, left + (cx + r) * s, top + (cy + r) * s),
            fill=white,
        )
    draw.rounded_rectangle(
        (left + 22 * s, top + 52 * s, left + 84 * s, top + 72 * s), radius=int(10 * s), fill=white
    )
    draw.rounded_rectangle(
        (left + 22 * s, top + 78 * s, left + 83 * s, top + 84 * s),
        radius=int(3 * s),
        fill=ACCENT_COLOR,
    )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def draw_logo() -> bytes:
    image = Image.new("RGBA", (512, 128), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    _mark(draw, 12, 14, 100)
    font = ImageFont.load_default(size=58)
    draw.text((132, 64), BUSINESS_NAME, font=font, fill="#1e1b4b", anchor="lm")
    return _png(image)


def draw_icon() -> bytes:
    image = Image.new("RGBA", (256, 256), (255, 255, 255, 0))
    _mark(ImageDraw.Draw(image), 0, 0, 256)
    return _png(image)


def brand_asset(data: bytes, created: datetime) -> BrandAsset:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return BrandAsset(
        id=hashlib.sha256(data).hexdigest(),
        content_type="image/png",
        data=data,
        width=width,
        height=height,
        created=created,
    )


# --- configuration -----------------------------------------------------------------------------


def demo_features(rows: DemoRows) -> feature_types.Features:
    f = feature_types
    products = []
    for product, prices in rows.catalogue.values():
        adjustable = (
            f.AdjustableQuantity(enabled=True, minimum=1, maximum=50)
            if product.name == "Team"
            else f.AdjustableQuantity()
        )
        products.append(
            f.UpdatableProduct(
                product=product.id,
                prices=[prices["month"].id, prices["year"].id],
                adjustable_quantity=adjustable,
            )
        )
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
        subscription_pause=f.SubscriptionPause(enabled=False),
    )


def demo_configuration(
    rows: DemoRows, logo: BrandAsset, icon: BrandAsset, now: datetime
) -> PortalConfiguration:
    return PortalConfiguration(
        id=service.new_configuration_id(),
        name="Default",
        is_default=True,
        active=True,
        login_page_enabled=True,
        login_page_token=service.new_login_token(),
        business_name=BUSINESS_NAME,
        headline="Manage your Acme Cloud plan, payment details and invoices.",
        privacy_policy_url="https://acme.example.com/legal/privacy",
        terms_of_service_url="https://acme.example.com/legal/terms",
        default_return_url="https://acme.example.com/account",
        brand_color=BRAND_COLOR,
        accent_color=ACCENT_COLOR,
        logo=logo.id,
        icon=icon.id,
        features=feature_types.encode(demo_features(rows)),
        notes=DEMO_NOTES,
        created=now,
        updated=now,
    )


# --- seeding -----------------------------------------------------------------------------------


async def _insert(rows: list) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start : start + INSERT_BATCH]
        await type(batch[0]).insert(*batch)


async def seed(*, now: datetime | None = None, rng_seed: int = 7) -> DemoSummary:
    """Fill an empty database with the demo merchant; return what is there if already seeded."""
    now = now or clock.now()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC).replace(microsecond=0)
    async with db.write():
        existing = await service.default()
        if existing is not None:
            if existing.notes == DEMO_NOTES:  # a demo seeded before the offers existed
                await seed_offers(existing, now)
            return _summary(existing, created=False)
        if await Customer.exists().run() or await Product.exists().run():
            raise NotEmptyError("the database already holds billing data; seed an empty one")
        rows = build(now, random.Random(rng_seed))
        logo = brand_asset(draw_logo(), now)
        icon = brand_asset(draw_icon(), now)
        configuration = demo_configuration(rows, logo, icon, now)
        for table_rows in rows.tables():
            if table_rows:
                await _insert(table_rows)
        await BrandAsset.insert(logo, icon)
        await PortalConfiguration.insert(configuration)
        await seed_offers(configuration, now)
    return _summary(configuration, created=True)
