"""Editing portal configurations: their features, and the configurations themselves (create,
rename, choose the default).

Every change is one write transaction and one audit event with the values before and after (only
what changed). Saving unchanged values writes nothing and records nothing.
"""

from __future__ import annotations

import re

import msgspec

from app import clock, db
from app.audit import service as audit
from app.billing.tables import Coupon, Price, Product
from app.configuration import feature_form
from app.configuration import features as feature_types
from app.configuration.features import Features
from app.configuration.service import (
    BRANDING_FIELDS,
    default,
    get,
    new_configuration_id,
    new_login_token,
)
from app.configuration.tables import PortalConfiguration
from app.i18n import gettext as _

NAME_MAX = 128
_INTERVALS = {"day": 0, "week": 1, "month": 2, "year": 3}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

FEATURES_UPDATED = "configuration.features_updated"
CREATED = "configuration.created"
RENAMED = "configuration.renamed"
DEFAULT_CHANGED = "configuration.default_changed"


# --- features ----------------------------------------------------------------------------------


async def choices(current: Features) -> feature_form.Choices:
    """What the features form offers, in three queries: products that are active or configured,
    with their recurring licensed prices that are active or configured; valid coupons, plus the
    configured retention coupon whatever its state."""
    configured_products = {p.product for p in current.subscription_update.products}
    configured_prices = {price for p in current.subscription_update.products for price in p.prices}
    products = await Product.select(
        Product.id, Product.name, Product.active, Product.unit_label
    ).order_by(Product.name, Product.id)
    products = [p for p in products if p["active"] or p["id"] in configured_products]
    prices = []
    if products:
        prices = (
            await Price.select(
                Price.id,
                Price.product,
                Price.active,
                Price.currency,
                Price.unit_amount,
                Price.recurring_interval.as_alias("interval"),
                Price.recurring_interval_count.as_alias("interval_count"),
                Price.nickname,
                Price.recurring_usage_type.as_alias("usage_type"),
            )
            .where((Price.type == "recurring") & Price.product.is_in([p["id"] for p in products]))
            .order_by(Price.unit_amount, Price.id)
        )
    by_product: dict[str, list[feature_form.ChoicePrice]] = {}
    for row in prices:
        if row["usage_type"] == "metered":
            continue
        if not row["active"] and row["id"] not in configured_prices:
            continue
        row.pop("usage_type")
        by_product.setdefault(row["product"], []).append(feature_form.ChoicePrice(**row))
    for listed in by_product.values():
        listed.sort(
            key=lambda p: (
                _INTERVALS.get(p.interval or "", 9),
                p.interval_count,
                p.unit_amount or 0,
            )
        )
    coupon_rows = await Coupon.select(
        Coupon.id,
        Coupon.name,
        Coupon.percent_off,
        Coupon.amount_off,
        Coupon.currency,
        Coupon.duration,
        Coupon.duration_in_months,
        Coupon.valid,
    ).order_by(Coupon.name, Coupon.id)
    retention = current.subscription_cancel.retention_coupon
    coupons = [
        feature_form.ChoiceCoupon(**row)
        for row in coupon_rows
        if row["valid"] or row["id"] == retention
    ]
    return feature_form.Choices(
        products=[
            feature_form.ChoiceProduct(**product, prices=by_product.get(product["id"], []))
            for product in products
            if by_product.get(product["id"]) or product["id"] in configured_products
        ],
        coupons=coupons,
    )


async def save_features(
    configuration_id: str, features: Features, actor: audit.Actor
) -> PortalConfiguration | None:
    """Store validated features (``feature_form.parse``); the audit event holds only the features
    that changed, before and after."""
    async with db.write():
        current = await get(configuration_id)
        if current is None:
            return None
        before, after = feature_form.changes(feature_types.decode(current.features), features)
        if before or after:
            await PortalConfiguration.update(
                {
                    PortalConfiguration.features: feature_types.encode(features),
                    PortalConfiguration.updated: clock.now(),
                }
            ).where(PortalConfiguration.id == configuration_id)
            await audit.record(
                actor,
                FEATURES_UPDATED,
                configuration=configuration_id,
                object_type="portal_configuration",
                object_id=configuration_id,
                before=before,
                after=after,
            )
    return await get(configuration_id)


# --- configurations ----------------------------------------------------------------------------


class ConfigurationRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    is_default: bool
    login_page_enabled: bool
    business_name: str


async def list_configurations() -> list[ConfigurationRow]:
    """Active configurations: the default first, then by name."""
    rows = await PortalConfiguration.select(
        PortalConfiguration.id,
        PortalConfiguration.name,
        PortalConfiguration.is_default,
        PortalConfiguration.login_page_enabled,
        PortalConfiguration.business_name,
    ).where(PortalConfiguration.active.eq(True))
    found = [ConfigurationRow(**row) for row in rows]
    found.sort(key=lambda row: (not row.is_default, row.name.casefold(), row.id))
    return found


def clean_name(value: str) -> str:
    return " ".join(value.split())


def name_problem(value: str) -> str | None:
    """None when ``value`` (cleaned) can name a configuration; uniqueness is checked on save."""
    if not value:
        return _("Enter a name for the configuration.")
    if len(value) > NAME_MAX:
        return _("The name must be %(n)d characters or fewer.") % {"n": NAME_MAX}
    if _CONTROL.search(value):
        return _("The name cannot contain line breaks or control characters.")
    return None


class NameTaken(Exception):
    """Another configuration already has this name (compared case-insensitively)."""

    def message(self) -> str:
        return _("Another configuration is already called that. Choose a different name.")


async def _name_taken(name: str, except_id: str | None = None) -> bool:
    rows = await PortalConfiguration.select(PortalConfiguration.id, PortalConfiguration.name)
    return any(row["name"].casefold() == name.casefold() and row["id"] != except_id for row in rows)


async def create(name: str, actor: audit.Actor) -> PortalConfiguration:
    """A new configuration named ``name``: a new random login token with the link off, the
    default features, and the default configuration's branding. Raises ``NameTaken``."""
    name = clean_name(name)
    async with db.write():
        if await _name_taken(name):
            raise NameTaken()
        source = await default()
        now = clock.now()
        branding = {field: getattr(source, field) for field in BRANDING_FIELDS} if source else {}
        configuration = PortalConfiguration(
            id=new_configuration_id(),
            name=name,
            is_default=source is None,
            active=True,
            login_page_enabled=False,
            login_page_token=new_login_token(),
            features=feature_types.encode(Features()),
            created=now,
            updated=now,
            **branding,
        )
        await PortalConfiguration.insert(configuration)
        await audit.record(
            actor,
            CREATED,
            configuration=configuration.id,
            object_type="portal_configuration",
            object_id=configuration.id,
            after={
                "name": name,
                "is_default": configuration.is_default,
                "login_page_enabled": False,
                "branding_from": source.id if source else None,
            },
        )
    return configuration


async def rename(
    configuration_id: str, name: str, actor: audit.Actor
) -> PortalConfiguration | None:
    """Raises ``NameTaken``; None for an unknown configuration."""
    name = clean_name(name)
    async with db.write():
        current = await get(configuration_id)
        if current is None:
            return None
        if await _name_taken(name, except_id=configuration_id):
            raise NameTaken()
        if current.name != name:
            await PortalConfiguration.update(
                {PortalConfiguration.name: name, PortalConfiguration.updated: clock.now()}
            ).where(PortalConfiguration.id == configuration_id)
            await audit.record(
                actor,
                RENAMED,
                configuration=configuration_id,
                object_type="portal_configuration",
                object_id=configuration_id,
                before={"name": current.name},
                after={"name": name},
            )
    return await get(configuration_id)


async def make_default(configuration_id: str, actor: audit.Actor) -> PortalConfiguration | None:
    """Make this (active) configuration the default, and no other: one transaction. Every other
    row is written (not only the current default), so on PostgreSQL a concurrent call waits for
    this one's row locks and then sees its result: exactly one default either way."""
    async with db.write():
        if db.is_postgres():
            # Every row locked first, in one order: two of these at once could otherwise each
            # lock part of the table in their first update and wait for the other's rest
            # (a deadlock). SQLite's write transactions run one at a time anyway.
            await PortalConfiguration.raw(
                "SELECT id FROM portal_configuration ORDER BY id FOR UPDATE"
            )
        target = await get(configuration_id)
        if target is None or not target.active:
            return None
        if target.is_default:
            return target
        previous = await default()
        await PortalConfiguration.update({PortalConfiguration.is_default: False}).where(
            PortalConfiguration.id != configuration_id
        )
        await PortalConfiguration.update(
            {PortalConfiguration.is_default: True, PortalConfiguration.updated: clock.now()}
        ).where(PortalConfiguration.id == configuration_id)
        await audit.record(
            actor,
            DEFAULT_CHANGED,
            configuration=configuration_id,
            object_type="portal_configuration",
            object_id=configuration_id,
            before={"default_configuration": previous.id if previous else None},
            after={"default_configuration": configuration_id},
        )
    return await get(configuration_id)
