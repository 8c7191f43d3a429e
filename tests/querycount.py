"""``counted(monkeypatch)``: the SQL statements run inside a block, for tests that pin how many
queries a page or a read costs (counts, never timings)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app import db as database


@contextmanager
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement the bound engine's class runs inside the block (so also those of an app's
    own engine on the same database), as SQL text."""
    engine = database.current()
    seen: list[str] = []
    original = type(engine).run_querystring

    async def run_querystring(self, querystring, *args, **kwargs):
        seen.append(str(querystring))
        return await original(self, querystring, *args, **kwargs)

    original_fetch = database.fetch

    async def fetch(sql, *args):  # the hand-written hot reads (app.db.fetch)
        seen.append(sql.postgres)
        return await original_fetch(sql, *args)

    with monkeypatch.context() as patch:
        patch.setattr(type(engine), "run_querystring", run_querystring)
        patch.setattr(database, "fetch", fetch)
        yield seen
