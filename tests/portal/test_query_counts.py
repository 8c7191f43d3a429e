"""The overview page's queries: rendered, the signed-in customer is read once (by the session
check), and the page's count does not grow with the customer's history; kept (the page cache),
one query in all. Counts, not timings."""

from __future__ import annotations

from tests.helpers import JENNY
from tests.querycount import counted


async def test_overview_page_reads_the_customer_once(demo_portal, monkeypatch):
    await demo_portal.sign_in(JENNY)
    assert (await demo_portal.client.get("/portal")).status_code == 200  # flash shown, popped
    monkeypatch.setitem(demo_portal.app.state, "page_cache", None)  # always rendered
    with counted(monkeypatch) as seen:
        response = await demo_portal.client.get("/portal")
    assert response.status_code == 200
    assert len([sql for sql in seen if 'FROM "billing_customer"' in sql]) == 1
    # session, customer, configuration; subscriptions, items, card, invoices (+ discounts and
    # schedules when some subscription has one)
    assert len(seen) <= 9, seen


async def test_a_kept_overview_costs_one_query(demo_portal, monkeypatch):
    await demo_portal.sign_in(JENNY)
    assert (await demo_portal.client.get("/portal")).status_code == 200  # flash shown, popped
    rendered = await demo_portal.client.get("/portal")  # rendered and kept
    with counted(monkeypatch) as seen:
        kept = await demo_portal.client.get("/portal")
    assert kept.status_code == 200
    assert len(seen) == 1, seen  # the session and the change counters, together
    assert "portal_stamp" in seen[0]
    assert kept.text == rendered.text
