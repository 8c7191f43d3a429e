"""Fixtures: the page fixtures of tests/helpers.py, the merchant account, and ``route_world``: the
demo merchant with a signed-in customer and merchant, built once per module and backend for the
tests that only read (every route, every form; nothing they do may change anything)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app import db as database
from app.billing import demo as demo_data
from app.merchant import accounts
from app.piccolo_app import APP_CONFIG
from tests import helpers
from tests.helpers import _client, demo, demo_portal, fake_clock, portal, shop  # noqa: F401
from tests.merchant.conftest import CHEAP, cheap_hashing, real_hashing  # noqa: F401
from tests.merchant.support import EMAIL, PASSWORD, account  # noqa: F401

from .world import World, world

shared_app = helpers.shared_app


async def _empty(engine) -> None:
    """What the ``db`` fixture does before each test, once for the module."""
    database.bind(engine)
    tables = list(reversed(APP_CONFIG.table_classes))
    if database.is_postgres(engine):
        names = ", ".join(f'"{t._meta.tablename}"' for t in tables)
        await engine.run_ddl(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    else:
        for table in tables:
            await table.delete(force=True)


@pytest.fixture(scope="module")
async def route_world(shared_app, database_engine) -> AsyncIterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "HASHER", CHEAP)
        accounts._dummy_hash.cache_clear()
        await _empty(database_engine)
        summary = await demo_data.seed()
        await accounts.create(EMAIL, PASSWORD)
        async with _client(shared_app, summary) as portal, world(portal, summary) as built:
            yield built
        accounts._dummy_hash.cache_clear()
