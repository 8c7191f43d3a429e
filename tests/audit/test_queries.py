"""Activity log queries: filters, pages, the CSV export and the cancellation summary, on both
database backends."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from app.audit import queries
from app.audit import service as audit

DAY = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)
ACTIONS = queries.action_labels()


def actor(email: str, type_: str = "customer") -> audit.Actor:
    return audit.Actor(type=type_, id=f"id_{email.split('@')[0]}", email=email)


async def record(fake_clock, when: datetime, who: audit.Actor, action: str, **kwargs) -> None:
    fake_clock.set(when)
    await audit.record(who, action, **kwargs)


def filters(**values: str) -> queries.Filters:
    found, errors = queries.parse_filters(
        values.get("email", ""),
        values.get("action", ""),
        values.get("date_from", ""),
        values.get("date_to", ""),
        ACTIONS,
    )
    assert errors == {}
    return found


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("jenny@example.com", "jenny@example.com"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise(cell, shown):
    assert queries.neutralise(cell) == shown


def test_parse_filters():
    found, errors = queries.parse_filters(
        " Jenny ", "customer.signed_in", "2026-05-01", "2026-05-31", ACTIONS
    )
    assert errors == {}
    assert found == queries.Filters(
        email="Jenny",
        action="customer.signed_in",
        date_from=date(2026, 5, 1),
        date_to=date(2026, 5, 31),
    )
    assert found.query() == {
        "email": "Jenny",
        "action": "customer.signed_in",
        "date_from": "2026-05-01",
        "date_to": "2026-05-31",
    }
    _, errors = queries.parse_filters("", "nope", "2026-5-1", "20260531", ACTIONS)
    assert set(errors) == {"action", "date_from", "date_to"}
    _, errors = queries.parse_filters("", "", "2026-05-31", "2026-05-01", ACTIONS)
    assert set(errors) == {"date_to"}
    assert queries.parse_filters("", "", "2026-05-01", "2026-05-01", ACTIONS)[1] == {}


async def test_events_filter_and_page_newest_first(db, fake_clock):
    jenny, pat = actor("jenny.rosen@example.com"), actor("Pat.Trial@Example.com")
    await record(fake_clock, DAY - timedelta(days=1), jenny, "customer.signed_in")
    await record(fake_clock, DAY, pat, "customer.signed_in")
    await record(fake_clock, DAY + timedelta(days=1), jenny, "subscription.renewed")
    await record(fake_clock, DAY + timedelta(days=1), pat, "subscription.renewed")

    every = await queries.events(filters())
    assert every.total == 4
    assert every.rows[0].created_at >= every.rows[-1].created_at
    assert (await queries.events(filters(email="PAT.trial"))).total == 2
    assert (await queries.events(filters(email="example.com"))).total == 4
    assert (await queries.events(filters(email="_"))).total == 0  # not a wildcard
    assert (await queries.events(filters(email="%"))).total == 0
    assert (await queries.events(filters(action="subscription.renewed"))).total == 2
    day = DAY.date().isoformat()
    assert (await queries.events(filters(date_from=day, date_to=day))).total == 1
    assert (await queries.events(filters(date_from=day))).total == 3
    assert (await queries.events(filters(date_to=day))).total == 2

    first = await queries.events(filters(), page=1, per_page=3)
    second = await queries.events(filters(), page=2, per_page=3)
    assert (first.pages, first.has_older, second.has_newer) == (2, True, True)
    assert len(first.rows) == 3
    assert len(second.rows) == 1
    assert {e.id for e in first.rows}.isdisjoint({e.id for e in second.rows})
    assert (await queries.events(filters(), page=50, per_page=3)).page == 2


async def test_known_actions_include_unlabelled_ones_found_in_the_log(db):
    await audit.record(actor("x@example.com"), "customer.did_something_new")
    known = await queries.known_actions()
    assert known["customer.did_something_new"] == "customer.did_something_new"
    assert known["subscription.canceled"] == "Subscription canceled"


def test_event_details_show_what_changed():
    event = queries.Event(
        id=1,
        created_at=DAY,
        actor_type="customer",
        actor_id="c",
        actor_email="c@example.com",
        configuration=None,
        action="subscription.plan_changed",
        object_type="subscription",
        object_id="sub_1",
        before={"price": "price_a", "quantity": 1, "gone": True},
        after={"price": "price_b", "quantity": 1, "idempotency_key": "k", "requested": {"x": 1}},
        ip="",
        user_agent="",
    )
    assert event.details() == [
        ("price", "price_a → price_b"),
        ("quantity", "1"),
        ("requested", '{"x": 1}'),
        ("gone", "true → —"),
    ]


async def test_export_streams_every_matching_event_in_keyset_batches(db, fake_clock):
    who = actor("batch@example.com")
    for n in range(7):  # several share a timestamp: the keyset must not skip or repeat them
        await record(fake_clock, DAY + timedelta(seconds=n // 3), who, "customer.signed_in")
    await record(fake_clock, DAY, actor("other@example.com"), "customer.signed_in")
    chunks = [chunk async for chunk in queries.export_csv(filters(email="batch"), batch=2)]
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == 7
    assert {row["actor_email"] for row in rows} == {"batch@example.com"}
    times = [row["created_at"] for row in rows]
    assert times == sorted(times, reverse=True)
    assert rows[0]["created_at"] == (DAY + timedelta(seconds=2)).isoformat()


async def test_cancellation_summary(db, fake_clock):
    async def cancel(when, email, reason, comment=""):
        await record(
            fake_clock,
            when,
            actor(email),
            "subscription.canceled",
            after={"reason": reason, "comment": comment},
        )

    await cancel(DAY, "a@example.com", "too_expensive", "  Too dear  ")
    await cancel(DAY + timedelta(hours=1), "b@example.com", "too_expensive")
    await cancel(DAY + timedelta(days=1), "c@example.com", "other", "Moving to paper")
    await cancel(DAY + timedelta(days=1), "d@example.com", None, "   ")
    await cancel(DAY - timedelta(days=1), "e@example.com", "unused", "Too early")
    await cancel(DAY + timedelta(days=2), "f@example.com", "unused", "Too late")
    await record(fake_clock, DAY, actor("a@example.com"), "subscription.renewed")

    summary = await queries.cancellation_summary(DAY.date(), (DAY + timedelta(days=1)).date())
    assert summary.total == 4
    assert summary.counts == {"too_expensive": 2, "other": 1, "": 1}
    assert [c.comment for c in summary.comments] == ["Moving to paper", "Too dear"]
    assert summary.comments[0].email == "c@example.com"
    assert summary.comment_total == 2
    limited = await queries.cancellation_summary(
        DAY.date() - timedelta(days=1), DAY.date() + timedelta(days=2), comment_limit=1
    )
    assert limited.total == 6
    assert [c.comment for c in limited.comments] == ["Too late"]
    assert limited.comment_total == 4


def test_default_period_is_the_last_30_days():
    assert queries.default_period(date(2026, 5, 31)) == (date(2026, 5, 2), date(2026, 5, 31))
