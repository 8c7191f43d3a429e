"""app/db.py: the hand-written reads (``Sql``, ``fetch``) on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

from app import db as database
from app.login.tables import WebSession


def test_placeholders_are_written_for_each_engine():
    sql = database.Sql("SELECT a FROM t WHERE b = {} AND c IN ({}, {})")
    assert sql.postgres == "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
    assert sql.sqlite == "SELECT a FROM t WHERE b = ? AND c IN (?, ?)"


async def test_fetch_returns_rows_by_column_name_with_their_types(db):
    now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    await WebSession.insert(
        WebSession(id="s1", kind="customer", subject="cus_1", absolute_expires_at=now),
        WebSession(id="s2", kind="merchant", subject="acct_1", absolute_expires_at=now),
    )
    sql = database.Sql("SELECT id, absolute_expires_at FROM web_session WHERE kind = {}")
    rows = await database.fetch(sql, "customer")
    assert [(row["id"], row["absolute_expires_at"]) for row in rows] == [("s1", now)]
    assert await database.fetch(sql, "nobody") == []
