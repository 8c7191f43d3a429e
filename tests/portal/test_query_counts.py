"""The overview page's queries: the signed-in customer is read once (by the session check), and
the page's count does not grow with the customer's history. Counts, not timings."""

from __future__ import annotations

from tests.helpers import JENNY
from tests.querycount import counted


async def test_overview_page_reads_the_customer_once(demo_portal, monkeypatch):
    await demo_portal.sign_in(JENNY)
    assert (await demo_portal.client.get("/portal")).status_code == 200  # flash shown, popped
    with counted(monkeypatch) as seen:
        response = await demo_portal.client.get("/portal")
    assert response.status_code == 200
    assert len([sql for sql in seen if 'FROM "billing_customer"' in sql]) == 1
    # session, customer, configuration; subscriptions, items, card, invoices (+ discounts and
    # schedules when some subscription has one)
    assert len(seen) <= 9, seen
