"""The activity page: filters (email, action, dates), pagination, CSV export with formula
injection neutralised, and the cancellation summary."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from app.audit import service as audit
from app.billing.tables import Customer, Subscription
from tests.helpers import HX, JENNY, without_html
from tests.merchant.support import COOKIE, EMAIL, Elements, signed_in
from tests.test_i18n import _untranslated, pseudo_locale  # noqa: F401  (fixture)

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
JENNY_ACTOR = audit.Actor(type="customer", id="cus_jenny", email=JENNY, ip="203.0.113.7")
PAT_ACTOR = audit.Actor(type="customer", id="cus_pat", email="pat.trial@example.com")


async def _event(fake_clock, when: datetime, actor: audit.Actor, action: str, **kwargs) -> None:
    fake_clock.set(when)
    await audit.record(actor, action, **kwargs)


async def _cancel(fake_clock, when, actor, reason, comment="") -> None:
    await _event(
        fake_clock,
        when,
        actor,
        "subscription.canceled",
        object_type="subscription",
        object_id=f"sub_{actor.id}",
        after={"reason": reason, "comment": comment, "at_period_end": True},
    )


async def _history(fake_clock) -> None:
    await _event(fake_clock, DAY - timedelta(days=3), JENNY_ACTOR, "customer.signed_in")
    await _event(
        fake_clock,
        DAY - timedelta(days=2),
        JENNY_ACTOR,
        "subscription.plan_changed",
        object_type="subscription",
        object_id="sub_1",
        before={"price": "price_basic"},
        after={"price": "price_team", "idempotency_key": "hidden-key"},
    )
    await _event(fake_clock, DAY - timedelta(days=1), PAT_ACTOR, "customer.signed_in")
    await _cancel(fake_clock, DAY, PAT_ACTOR, "too_expensive", "Costs too much")


async def _signed_in_now(merchant, fake_clock) -> None:
    fake_clock.set(DAY + timedelta(days=1))
    await signed_in(merchant)


# -- access -------------------------------------------------------------------------------------


async def test_the_pages_need_a_merchant_session(merchant):
    for url in (
        "/merchant/activity",
        "/merchant/activity/export.csv",
        "/merchant/activity/cancellations",
    ):
        response = await merchant.client.get(url)
        assert response.status_code == 303, url
        assert urlsplit(response.headers["location"]).path == "/merchant/sign-in"


async def test_a_customer_session_is_refused(merchant):
    token = await merchant.portal.sign_in(JENNY)
    merchant.client.cookies.set(COOKIE, token, domain="portal.test")
    for url in ("/merchant/activity", "/merchant/activity/export.csv"):
        response = await merchant.client.get(url)
        assert response.status_code == 303, url
        assert urlsplit(response.headers["location"]).path == "/merchant/sign-in"


# -- the log ------------------------------------------------------------------------------------


async def test_the_log_lists_events_newest_first(merchant, fake_clock):
    await _history(fake_clock)
    await _signed_in_now(merchant, fake_clock)
    response = await merchant.client.get("/merchant/activity")
    assert response.status_code == 200
    html = response.text
    assert 'aria-current="page">Activity</a>' in html
    for label in ("Email", "Action", "From", "To"):
        assert f">{label}</label>" in html
    assert ">Filter</button>" in html
    # A link, not a GET form without fields (which would go to ".../export.csv?").
    assert 'href="/merchant/activity/export.csv">Export CSV</a>' in html
    table = html.split("<tbody>", 1)[1]
    assert table.index("Merchant signed in") < table.index("Subscription canceled")
    assert table.index("Subscription canceled") < table.index("Subscription plan changed")
    assert "price_basic → price_team" in html
    assert "hidden-key" not in html  # idempotency keys are noise
    assert "203.0.113.7" in html
    assert "6 events" in html  # and the merchant account's creation, by Portico


async def test_filters(merchant, fake_clock):
    await _history(fake_clock)
    await _signed_in_now(merchant, fake_clock)

    async def shown(**query) -> str:
        response = await merchant.client.get("/merchant/activity", params=query)
        assert response.status_code == 200, response.text
        return response.text

    by_email = await shown(email="  JENNY.Rosen@Example.COM ")
    assert "2 events" in by_email
    assert "pat.trial@example.com" not in by_email.split("<tbody>", 1)[1]
    assert "2 events" in await shown(email="pat.trial")
    assert "No activity matches these filters." in await shown(email="%")  # no wildcards
    by_action = await shown(action="customer.signed_in")
    assert "2 events" in by_action
    assert "Subscription canceled" not in by_action.split("<tbody>", 1)[1]
    assert "1 event" in await shown(action="customer.signed_in", email="pat")
    day = (DAY - timedelta(days=2)).date().isoformat()
    assert "1 event" in await shown(date_from=day, date_to=day)
    assert "4 events" in await shown(date_to=DAY.date().isoformat())
    # From DAY on: the cancellation, the merchant's sign-in and the account's creation (today).
    assert "3 events" in await shown(date_from=DAY.date().isoformat())
    # The filter form keeps what was chosen.
    html = await shown(action="customer.signed_in", email="pat")
    options = Elements(html).named("option")
    assert [o["value"] for o in options if "selected" in o] == ["customer.signed_in"]
    assert 'value="pat"' in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"date_from": "2026-02-30"}, "date_from", "Enter the start date as a real date"),
        ({"date_from": "yesterday"}, "date_from", "Enter the start date as a real date"),
        ({"date_to": "2026-13-01"}, "date_to", "Enter the end date as a real date"),
        (
            {"date_from": "2026-03-10", "date_to": "2026-03-01"},
            "date_to",
            "The end date must be the same as or after the start date.",
        ),
        ({"action": "subscription.exploded"}, "action", "Choose an action from the list."),
        ({"email": "x" * 321}, "email", "320 characters or fewer"),
    ],
)
async def test_invalid_filters_are_explained(merchant, query, field, message):
    await signed_in(merchant)
    response = await merchant.client.get("/merchant/activity", params=query)
    assert response.status_code == 422
    assert "There is a problem" in response.text
    assert f'<a href="#{field}">' in response.text
    assert message in response.text
    assert "<title>Error: Activity" in response.text
    export = await merchant.client.get("/merchant/activity/export.csv", params=query)
    assert export.status_code == 422
    assert "text/html" in export.headers["content-type"]


async def test_the_log_is_paginated(merchant, fake_clock):
    for n in range(60):
        await _event(fake_clock, DAY + timedelta(minutes=n), JENNY_ACTOR, "customer.signed_in")
    await _signed_in_now(merchant, fake_clock)
    first = await merchant.client.get("/merchant/activity", params={"email": "jenny"})
    assert "Page 1 of 2" in first.text
    links = {a.get("rel"): a for a in Elements(first.text).named("a") if a.get("rel")}
    assert links["next"]["href"] == "/merchant/activity?email=jenny&page=2"
    second = await merchant.client.get(links["next"]["href"])
    assert "Page 2 of 2" in second.text
    assert second.text.count("<tr>") == 10 + 1  # ten events and the header row


async def test_htmx_filtering_swaps_the_main_content(merchant, fake_clock):
    await _history(fake_clock)
    await _signed_in_now(merchant, fake_clock)
    response = await merchant.client.get(
        "/merchant/activity", params={"action": "customer.signed_in"}, headers=HX
    )
    assert response.status_code == 200
    assert without_html(response.text)
    assert "<title>Activity \N{EN DASH} Portico</title>" in response.text


async def test_markup_in_events_is_inert(merchant, fake_clock):
    await _event(
        fake_clock,
        DAY,
        audit.Actor(type="customer", id="cus_x", email="<script>alert(1)</script>@x.example"),
        "customer.details_updated",
        after={"name": '"><img src=x onerror=alert(1)>'},
    )
    await _signed_in_now(merchant, fake_clock)
    html = (await merchant.client.get("/merchant/activity")).text
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- CSV ----------------------------------------------------------------------------------------


async def test_csv_export_uses_the_filters_and_neutralises_formulas(merchant, fake_clock):
    await _history(fake_clock)
    await _cancel(fake_clock, DAY + timedelta(hours=1), JENNY_ACTOR, "other", "=1+2")
    await _event(
        fake_clock,
        DAY + timedelta(hours=2),
        audit.Actor(type="customer", id="cus_evil", email='=HYPERLINK("http://evil")@x.io'),
        "customer.details_updated",
        after={"name": "@SUM(A1)"},
    )
    await _event(
        fake_clock,
        DAY + timedelta(hours=3),
        audit.Actor(type="customer", id="+cus_plus", email="-minus@x.io", user_agent="=cmd|"),
        "customer.signed_in",
    )
    await _signed_in_now(merchant, fake_clock)
    response = await merchant.client.get("/merchant/activity/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="portico-activity-' in disposition
    assert response.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 9
    # Newest first: the account's creation (today), then the merchant's sign-in.
    assert [row["action"] for row in rows[:2]] == ["merchant.account_created", "merchant.signed_in"]
    assert rows[1]["actor_email"] == EMAIL
    by_id = {row["actor_id"]: row for row in rows}
    evil = by_id["cus_evil"]
    assert evil["actor_email"] == '\'=HYPERLINK("http://evil")@x.io'
    assert evil["after"] == '{"name": "@SUM(A1)"}'  # JSON starts with "{": nothing to run
    plus = by_id["'+cus_plus"]
    assert plus["actor_email"] == "'-minus@x.io"
    assert plus["user_agent"] == "'=cmd|"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value
    # The same filters as the page.
    filtered = await merchant.client.get(
        "/merchant/activity/export.csv", params={"action": "subscription.canceled"}
    )
    rows = list(csv.DictReader(io.StringIO(filtered.text)))
    assert [row["actor_id"] for row in rows] == ["cus_jenny", "cus_pat"]
    assert '"comment": "=1+2"' in rows[0]["after"]
    # The page's export link carries the filters it shows.
    page = await merchant.client.get(
        "/merchant/activity", params={"email": "pat o'neil@x.io", "action": ""}
    )
    links = [a["href"] for a in Elements(page.text).named("a") if ".csv" in (a.get("href") or "")]
    assert links == ["/merchant/activity/export.csv?email=pat+o%27neil%40x.io"]
    get_forms = [f["action"] for f in Elements(page.text).named("form") if f.get("method") == "get"]
    assert get_forms == ["/merchant/activity"]  # the filters, which have fields
    same = await merchant.client.get(links[0])
    assert same.status_code == 200
    assert same.headers["content-type"] == "text/csv; charset=utf-8"


async def test_an_empty_export_has_the_header_row(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(
        "/merchant/activity/export.csv", params={"email": "nobody-at-all"}
    )
    assert response.status_code == 200
    assert response.text.splitlines()[0].startswith("created_at,actor_type,actor_id")
    assert len(response.text.splitlines()) == 1


# -- cancellations ------------------------------------------------------------------------------


async def test_the_cancellation_summary_counts_reasons_and_lists_comments(merchant, fake_clock):
    start = DAY
    await _cancel(fake_clock, start, JENNY_ACTOR, "too_expensive", "Costs too much")
    await _cancel(fake_clock, start + timedelta(days=1), PAT_ACTOR, "too_expensive")
    await _cancel(
        fake_clock,
        start + timedelta(days=2),
        audit.Actor(type="customer", id="cus_3", email="three@example.com"),
        "missing_features",
        "<script>alert('x')</script> needs SSO",
    )
    await _cancel(
        fake_clock,
        start + timedelta(days=3),
        audit.Actor(type="customer", id="cus_4", email="four@example.com"),
        None,
    )
    await _cancel(fake_clock, start - timedelta(days=40), PAT_ACTOR, "unused", "Old comment")
    await _event(fake_clock, start, JENNY_ACTOR, "subscription.renewed")
    fake_clock.set(start + timedelta(days=5))
    await signed_in(merchant)

    response = await merchant.client.get("/merchant/activity/cancellations")
    assert response.status_code == 200
    html = response.text
    default_from = (start + timedelta(days=5) - timedelta(days=29)).date().isoformat()
    assert f'value="{default_from}"' in html
    assert "4 cancellations from" in html

    def count(label: str) -> str:
        row = html.split(f'<th scope="row">{label}</th>', 1)[1]
        return row.split('<td class="num">', 1)[1].split("</td>", 1)[0]

    assert count("It&#39;s too expensive") == "2"
    assert count("I need more features") == "1"
    assert count("I no longer need it") == "0"  # the old one is outside the period
    assert count("No reason given") == "1"
    assert count("Customer service was less than expected") == "0"
    assert "Costs too much" in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; needs SSO" in html
    assert "<script>alert" not in html
    assert "Old comment" not in html
    assert html.index("needs SSO") < html.index("Costs too much")  # newest first

    wider = await merchant.client.get(
        "/merchant/activity/cancellations",
        params={"date_from": "2026-01-01", "date_to": "2026-12-31"},
    )
    assert "5 cancellations from 2026-01-01 to 2026-12-31." in wider.text
    assert "Old comment" in wider.text


async def test_the_cancellation_period_is_validated(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(
        "/merchant/activity/cancellations",
        params={"date_from": "2026-05-01", "date_to": "2026-04-01"},
    )
    assert response.status_code == 422
    assert "The end date must be the same as or after the start date." in response.text
    response = await merchant.client.get(
        "/merchant/activity/cancellations", params={"date_from": "soon"}
    )
    assert response.status_code == 422
    assert "Enter the start date as a real date" in response.text


INTENT_RE = re.compile(r'name="intent" value="([^"]+)"')


async def test_a_real_cancellation_appears_in_the_summary(merchant):
    """Through the customer's own cancel form, so the summary reads what the portal records."""
    customer = await Customer.select(Customer.id).where(Customer.email == JENNY).first()
    sub = (
        await Subscription.select(Subscription.id)
        .where((Subscription.customer == customer["id"]) & (Subscription.status == "active"))
        .order_by(Subscription.created, ascending=False)
        .first()
    )
    await merchant.portal.sign_in(JENNY)  # the same browser is a customer too
    base = f"/portal/subscriptions/{sub['id']}"
    comment = "Prices went up <b>again</b>."
    review = await merchant.post(
        f"{base}/cancel/review", {"reason": "too_expensive", "comment": comment}
    )
    assert review.status_code == 200, review.text
    intent = INTENT_RE.findall(review.text)[0]
    done = await merchant.post(
        f"{base}/cancel", {"reason": "too_expensive", "comment": comment, "intent": intent}
    )
    assert done.status_code == 303, done.text
    await signed_in(merchant)
    html = (await merchant.client.get("/merchant/activity/cancellations")).text
    assert "1 cancellation from" in html
    assert "Prices went up &lt;b&gt;again&lt;/b&gt;." in html
    assert JENNY in html
    row = html.split('<th scope="row">It&#39;s too expensive</th>', 1)[1]
    assert row.split('<td class="num">', 1)[1].startswith("1</td>")


async def test_the_pages_have_no_untranslated_text(merchant, fake_clock, pseudo_locale):  # noqa: F811
    await _history(fake_clock)
    await _signed_in_now(merchant, fake_clock)
    # Data: addresses, dates, object ids, detail names and values, the comment, shares.
    data = re.compile(
        r"^([\w.+-]+@[\w.-]+|\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC|[a-z_]+ [a-z]+_\w+|[a-z_]+"
        r"|[\d.]+|\d+%|—|.* → .*|Costs too much)$"
    )
    for response in (
        await merchant.client.get("/merchant/activity"),
        await merchant.client.get("/merchant/activity", params={"date_from": "x"}),
        await merchant.client.get("/merchant/activity/cancellations"),
        await merchant.client.get(
            "/merchant/activity/cancellations", params={"date_from": "2026-01-01"}
        ),
    ):
        assert [t for t in _untranslated(response.text) if not data.match(t)] == []
