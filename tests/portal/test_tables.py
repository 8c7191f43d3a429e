"""The ``portal_stamp`` triggers (migration ``portico_2026_12_06t08_18_30_000000``), on every
backend: each insert, update and delete of a row a portal page shows bumps exactly the scope whose
pages show it (the customer's id for per-customer tables, ``"*"`` for shared ones), by one, and no
other scope. The page cache (``app.portal.page_cache``) trusts these counters: a write that does
not move them leaves a stale page being served.

The tables come from the migration's own ``PER_CUSTOMER`` and ``SHARED`` lists, so a table added
there is tested here without a change. Rows are built from the Piccolo tables, following their
foreign keys (not the migration's mapping) to the customer they belong to: a wrong mapping in the
migration shows up as a bump of the wrong scope."""

from __future__ import annotations

import importlib
import secrets
from typing import Any

import pytest
from piccolo.columns import JSON, BigInt, Boolean, Bytea, ForeignKey, Integer, Text, Varchar
from piccolo.columns.base import Column
from piccolo.table import Table

from app import db as database
from app.billing import stripe_batch
from app.billing.tables import Customer, PaymentMethod
from app.piccolo_app import APP_CONFIG
from app.portal.tables import EVERYONE, PortalStamp

MIGRATION = importlib.import_module("piccolo_migrations.portico_2026_12_06t08_18_30_000000")
PER_CUSTOMER: list[str] = list(MIGRATION.PER_CUSTOMER)
SHARED: list[str] = list(MIGRATION.SHARED)
TABLES: dict[str, type[Table]] = {t._meta.tablename: t for t in APP_CONFIG.table_classes}


def test_the_migration_lists_name_app_tables_and_the_shared_scope_is_the_apps():
    assert MIGRATION.EVERYONE == EVERYONE
    missing = [name for name in [*PER_CUSTOMER, *SHARED] if name not in TABLES]
    assert missing == []
    assert not set(PER_CUSTOMER) & set(SHARED)


# What every customer's portal pages show (the catalogue, offers, the portal's configuration and
# its images): these must stay in SHARED.
SHOWN_TO_EVERYONE = {
    "billing_product",
    "billing_price",
    "billing_coupon",
    "billing_promotion_code",
    "portal_configuration",
    "brand_asset",
}


def test_what_every_portal_page_shows_is_shared():
    assert sorted(SHOWN_TO_EVERYONE - set(SHARED)) == []


def test_every_table_whose_rows_belong_to_a_customer_is_per_customer():
    """A table with a foreign key leading to ``billing_customer`` holds some customer's data: a
    table added to the billing mirror without a trigger would leave their cached pages stale."""
    owned = sorted(name for name, table in TABLES.items() if _leads_to_customer(table))
    assert sorted(set(owned) - set(PER_CUSTOMER)) == []


# -- building rows -----------------------------------------------------------------------------


def _leads_to_customer(table: type[Table]) -> bool:
    if table is Customer:
        return True
    return any(_leads_to_customer(_target(fk)) for fk in table._meta.foreign_key_columns)


def _target(fk: ForeignKey) -> type[Table]:
    return fk._foreign_key_meta.resolved_references


def _unique_text(column: Column, prefix: str) -> str:
    length = column.length if isinstance(column, Varchar) else 64
    return f"{prefix[:8]}_{secrets.token_hex(8)}"[:length]


async def prepare(table: type[Table], customer: str | None, **values: Any) -> dict[str, Any]:
    """The values of a new row of ``table`` with only what it needs: a primary key, unique values
    where the column is unique, and its required foreign keys, whose rows are inserted now (built
    the same way). Any foreign key to ``billing_customer``, direct or through a parent, leads to
    ``customer`` (a new customer when None)."""
    pk = table._meta.primary_key
    for column in table._meta.columns:
        name = column._meta.name
        if name in values:
            continue
        if isinstance(column, ForeignKey):
            target = _target(column)
            if column._meta.null and not _leads_to_customer(target):
                continue
            if target is Customer and customer is not None:
                values[name] = customer
            else:
                values[name] = (await make_row(target, customer))[_target_pk(target)]
        elif (column is pk or column._meta.unique) and isinstance(column, Varchar):
            values[name] = _unique_text(column, table._meta.tablename.split("_")[-1])
    return values


async def insert(table: type[Table], values: dict[str, Any]) -> dict[str, Any]:
    row = table(**values)
    await table.insert(row)
    pk = table._meta.primary_key._meta.name
    return {**values, pk: getattr(row, pk)}


async def make_row(table: type[Table], customer: str | None, **values: Any) -> dict[str, Any]:
    return await insert(table, await prepare(table, customer, **values))


def _target_pk(table: type[Table]) -> str:
    return table._meta.primary_key._meta.name


def _changed(column: Column, value: Any) -> Any:
    if isinstance(column, Boolean):
        return not value
    if isinstance(column, Integer | BigInt):
        return (value or 0) + 1
    if isinstance(column, Varchar | Text):
        length = column.length if isinstance(column, Varchar) else 16
        return ("z" * length if (value or "")[:1] != "z" else "y" * length)[: min(length, 16)]
    raise AssertionError(column)


def _plain_column(table: type[Table]) -> Column:
    """A column an update can change without touching keys: the first plain value column."""
    for column in table._meta.columns:
        if column is table._meta.primary_key or column._meta.unique:
            continue
        if isinstance(column, ForeignKey | JSON | Bytea):
            continue
        if isinstance(column, Boolean | Integer | BigInt | Varchar | Text):
            return column
    raise AssertionError(f"{table._meta.tablename}: no plain column to update")


def _customer_column(table: type[Table]) -> ForeignKey:
    """The foreign key through which ``table``'s rows belong to a customer."""
    found = [fk for fk in table._meta.foreign_key_columns if _leads_to_customer(_target(fk))]
    assert len(found) == 1, (table._meta.tablename, found)
    return found[0]


# -- reading the counters ----------------------------------------------------------------------


async def stamps() -> dict[str, int]:
    rows = await PortalStamp.select(PortalStamp.scope, PortalStamp.version)
    return {row["scope"]: row["version"] for row in rows}


class Moves:
    """What one write did to the counters: ``{scope: how much it moved}``, unmoved ones left out."""

    def __init__(self) -> None:
        self.before: dict[str, int] = {}
        self.moved: dict[str, int] = {}

    async def __aenter__(self) -> Moves:
        self.before = await stamps()
        return self

    async def __aexit__(self, *exc: object) -> None:
        after = await stamps()
        self.moved = {
            scope: after.get(scope, 0) - self.before.get(scope, 0)
            for scope in set(after) | set(self.before)
            if after.get(scope, 0) != self.before.get(scope, 0)
        }


async def _customers() -> tuple[str, str, str]:
    """Three customers, each with some stamp of their own already, so that a wrong bump shows."""
    ids = []
    for n in range(3):
        customer = f"cus_stamp{n}_{secrets.token_hex(3)}"
        await Customer.insert(Customer(id=customer, email=f"stamp{n}@example.test"))
        ids.append(customer)
    return ids[0], ids[1], ids[2]


def _where_id(table: type[Table], row: dict[str, Any]):
    pk = table._meta.primary_key
    return pk == row[pk._meta.name]


# -- per-customer tables -----------------------------------------------------------------------


@pytest.mark.parametrize("tablename", PER_CUSTOMER)
async def test_a_per_customer_row_bumps_its_customer_once_per_write(db, tablename: str):
    table = TABLES[tablename]
    a, b, _ = await _customers()
    if table is not Customer:
        await make_row(table, b)  # another customer's row of the same table, left alone

    if table is Customer:
        values = await prepare(Customer, None)
        a = values["id"]
    else:
        values = await prepare(table, a)
    inserted, updated, deleted = await _insert_update_delete(table, values)
    assert inserted == {a: 1}, "insert"
    assert updated == {a: 1}, "update"
    assert deleted == {a: 1}, "delete"


@pytest.mark.parametrize("tablename", [name for name in PER_CUSTOMER if name != "billing_customer"])
async def test_a_row_moved_to_another_customer_bumps_both(db, tablename: str):
    """Reassigning a row (a card attached elsewhere; an item or a line put under a parent of
    another customer) changes both customers' pages."""
    table = TABLES[tablename]
    a, b, _ = await _customers()
    row = await make_row(table, a)
    fk = _customer_column(table)
    target = _target(fk)
    elsewhere = b if target is Customer else (await make_row(target, b))[_target_pk(target)]
    async with Moves() as moved:
        await table.update({fk: elsewhere}).where(_where_id(table, row))
    assert moved.moved == {a: 1, b: 1}


async def test_a_payment_method_moved_or_detached_bumps_the_customers_it_leaves_and_joins(db):
    a, b, _ = await _customers()
    card = await make_row(PaymentMethod, a)
    async with Moves() as moved:
        await PaymentMethod.update({PaymentMethod.customer: b}).where(
            PaymentMethod.id == card["id"]
        )
    assert moved.moved == {a: 1, b: 1}
    async with Moves() as detached:
        await PaymentMethod.update({PaymentMethod.customer: None}).where(
            PaymentMethod.id == card["id"]
        )
    assert detached.moved == {b: 1}
    async with Moves() as deleted:  # a detached card belongs to nobody's pages
        await PaymentMethod.delete().where(PaymentMethod.id == card["id"])
    assert deleted.moved == {}


async def test_the_syncs_upsert_bumps_like_an_update(db):
    """Stripe sync writes with ``INSERT ... ON CONFLICT (id) DO UPDATE``: on an existing row that
    is an update (row triggers for UPDATE, not INSERT), so a card the sync moves to another
    customer bumps both."""
    a, b, _ = await _customers()
    card = await make_row(PaymentMethod, a)
    async with Moves() as same:
        await stripe_batch.upsert(PaymentMethod, [{"id": card["id"], "customer": a}])
    assert same.moved == {a: 1}
    async with Moves() as moved:
        await stripe_batch.upsert(PaymentMethod, [{"id": card["id"], "customer": b}])
    assert moved.moved == {a: 1, b: 1}
    async with Moves() as renamed:
        await stripe_batch.upsert(Customer, [{"id": b, "name": "Renamed by sync"}])
    assert renamed.moved == {b: 1}


# -- shared tables -----------------------------------------------------------------------------


async def _insert_update_delete(
    table: type[Table], values: dict[str, Any]
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Insert a row of ``table``, change one plain column, delete it: the counters each step
    moved."""
    async with Moves() as inserted:
        row = await insert(table, values)
    column = _plain_column(table)
    current = await table.select(column).where(_where_id(table, row)).first()
    assert current is not None
    async with Moves() as updated:
        await table.update({column: _changed(column, current[column._meta.name])}).where(
            _where_id(table, row)
        )
    async with Moves() as deleted:
        await table.delete().where(_where_id(table, row))
    return inserted.moved, updated.moved, deleted.moved


@pytest.mark.parametrize("tablename", SHARED)
async def test_a_shared_row_bumps_everyone_once_per_write(db, tablename: str):
    table = TABLES[tablename]
    await _customers()
    values = await prepare(table, None)
    inserted, updated, deleted = await _insert_update_delete(table, values)
    assert inserted == {EVERYONE: 1}, "insert"
    assert updated == {EVERYONE: 1}, "update"
    assert deleted == {EVERYONE: 1}, "delete"


# -- TRUNCATE (PostgreSQL only: SQLite has none) -----------------------------------------------


@pytest.mark.parametrize("tablename", [*PER_CUSTOMER, *SHARED])
async def test_truncate_bumps_everyone_on_postgres(db, tablename: str):
    """TRUNCATE fires no row triggers: it empties a table for every customer at once, so it moves
    the counter every page depends on."""
    if not database.is_postgres(db):
        pytest.skip("TRUNCATE is PostgreSQL's")
    a, _, _ = await _customers()
    table = TABLES[tablename]
    await make_row(table, a if tablename in PER_CUSTOMER else None)
    async with Moves() as truncated:
        await db.run_ddl(f'TRUNCATE "{tablename}" CASCADE')
    assert set(truncated.moved) == {EVERYONE}
    assert truncated.moved[EVERYONE] >= 1


# -- concurrency (PostgreSQL: SQLite runs one write transaction at a time) ----------------------


async def test_two_writers_of_one_customer_do_not_deadlock_on_its_counter(db):
    """Two transactions write different rows of one customer, then each other's row (two
    webhooks at once, say). Counters bumped at each statement would lock the customer's counter
    from the first write to the commit: the second transaction would wait for it while holding
    the row the first one needs next, a deadlock. Bumped at commit, the first simply waits for
    the second to finish."""
    if not database.is_postgres(db):
        pytest.skip("one SQLite write transaction runs at a time")
    import asyncio

    import asyncpg

    a, _, _ = await _customers()
    await PaymentMethod.insert(
        PaymentMethod(id="pm_stamp_1", customer=a, type="card"),
        PaymentMethod(id="pm_stamp_2", customer=a, type="card"),
    )
    before = await stamps()
    dsn = db.config["dsn"]
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    wrote_one, wrote_two = asyncio.Event(), asyncio.Event()
    update = "UPDATE billing_payment_method SET card_brand = $2 WHERE id = $1"

    async def one() -> None:
        async with first.transaction():
            await first.execute(update, "pm_stamp_1", "visa")
            wrote_one.set()
            await wrote_two.wait()
            await first.execute(update, "pm_stamp_2", "visa")  # waits for the other's commit

    async def two() -> None:
        await wrote_one.wait()
        async with second.transaction():
            await second.execute(update, "pm_stamp_2", "mastercard")
            wrote_two.set()
            await asyncio.sleep(0.2)  # the other is now waiting for this row

    try:
        async with asyncio.timeout(10):
            await asyncio.gather(one(), two())
    finally:
        await first.close()
        await second.close()
    assert (await stamps())[a] == before[a] + 3  # every write counted
