"""Subscription journeys in the portal (change plan, change quantity, cancel and renew, cancel
immediately past the retention offer), each with JavaScript on and off, each on a customer of its
own copied from Jenny (Team, 5 seats, monthly; Visa 4242)."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from e2e.support.axe import assert_accessible
from e2e.support.customers import PortalCustomer, changed_features, clone_customer, journey_email
from e2e.support.database import PorticoDatabase
from e2e.support.journeys import page_title
from e2e.support.mailbox import Mailbox
from e2e.support.portal import (
    PostCounter,
    assert_stayed_in_document,
    button,
    expect_focus_after_swap,
    flash,
    follow,
    heading,
    link,
    open_page,
    sign_in_to_portal,
)
from e2e.support.server import LiveServer

Fresh = Callable[[str], int]
LIST = "/portal/subscriptions"
TIMES = "\u00d7"  # the multiplication sign between a plan and its quantity


def subscription_card(page: Page, customer: PortalCustomer):
    return page.locator(f"#sub-{customer.subscription_id}")


def item_of(db: PorticoDatabase, customer: PortalCustomer):
    rows = db.query(
        "SELECT i.price, i.quantity, p.unit_amount, pr.name AS product "
        "FROM billing_subscription_item i JOIN billing_price p ON p.id = i.price "
        "JOIN billing_product pr ON pr.id = p.product WHERE i.subscription = ?",
        customer.subscription_id,
    )
    assert len(rows) == 1
    return rows[0]


def subscription_row(db: PorticoDatabase, customer: PortalCustomer):
    return db.query("SELECT * FROM billing_subscription WHERE id = ?", customer.subscription_id)[0]


def assert_preview(page: Page, js: bool) -> None:
    """The preview's proration lines (a credit and a charge), amount due now and next invoice."""
    expect(heading(page, "Confirm your plan change")).to_be_visible()
    expect_focus_after_swap(js, heading(page, "Confirm your plan change"))
    expect(page).to_have_title(page_title("Confirm your plan change"))
    lines = page.get_by_role("table", name="Charges and credits for this change")
    expect(lines).to_be_visible()
    expect(lines.get_by_role("row").filter(has_text="Unused time on")).to_have_count(1)
    expect(lines.get_by_role("row").filter(has_text="Remaining time on")).to_have_count(1)
    main = page.get_by_role("main")
    expect(main.locator("dt", has_text="Amount due now").locator("+ dd")).to_have_text(
        re.compile(r"^\$[\d,]+\.\d\d$")
    )
    expect(main.locator("dt", has_text="Next invoice")).to_be_visible()
    expect(main.locator("dt", has_text="Next invoice").locator("+ dd")).to_have_text(
        re.compile(r"^\$[\d,]+\.\d\d on \w")
    )


def test_change_plan_with_preview(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    # Team with 2 seats ($58 a month) to Business ($99): an upgrade, so it is prorated now. (From
    # 5 seats, $145, Business is cheaper, and the demo's "decreasing_item_amount" rule schedules it
    # for the end of the period instead.)
    customer = clone_customer(
        portico_db, journey_email("change_plan", js), name="Casey Upgrade", quantity=2
    )
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    open_page(page, js, LIST, "Subscriptions")
    card = subscription_card(page, customer)
    expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 2")

    follow(page, js, link(card, "Change plan"))
    expect(heading(page, "Change plan")).to_be_visible()
    expect_focus_after_swap(js, heading(page, "Change plan"))
    expect(page).to_have_url(re.compile(r"/portal/subscriptions/[^/]+/change$"))  # no "?"
    expect(page.get_by_role("radio", name=re.compile(r"^Team — \$29\.00 \/ month"))).to_be_checked()
    page.get_by_role("radio", name=re.compile(r"^Business — \$99\.00 \/ month")).check()
    follow(page, js, button(page, "Continue"))

    assert_preview(page, js)
    main = page.get_by_role("main")
    expect(main.locator("dt", has_text="New plan").locator("+ dd")).to_contain_text("Business")
    follow(page, js, button(page, "Confirm change"))

    expect(heading(page, "Subscriptions")).to_be_visible()
    expect(flash(page)).to_contain_text("Your plan was changed.")
    expect(page).to_have_url(re.compile(r"/portal/subscriptions$"))
    expect(page).to_have_title(page_title("Subscriptions"))
    expect(card.get_by_role("heading", level=2)).to_contain_text("Business")
    expect(card.get_by_role("heading", level=2)).not_to_contain_text("Team")
    assert_stayed_in_document(page, js)
    item = item_of(portico_db, customer)
    assert (item["product"], item["unit_amount"], item["quantity"]) == ("Business", 9900, 1)


def test_change_quantity_with_preview(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("change_quantity", js), name="Quinn Seats")
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    open_page(page, js, LIST, "Subscriptions")
    card = subscription_card(page, customer)

    follow(page, js, link(card, "Change plan"))
    expect(heading(page, "Change plan")).to_be_visible()
    quantity = page.get_by_label("Quantity", exact=True)
    expect(quantity).to_have_value("5")
    quantity.fill("8")
    follow(page, js, button(page, "Continue"))

    assert_preview(page, js)
    main = page.get_by_role("main")
    expect(main.locator("dt", has_text="New plan").locator("+ dd")).to_contain_text("Team")
    expect(main.locator("dt", has_text="New plan").locator("+ dd")).to_contain_text(f"{TIMES} 8")
    follow(page, js, button(page, "Confirm change"))

    expect(flash(page)).to_contain_text("Your plan was changed.")
    expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 8")
    assert_stayed_in_document(page, js)
    item = item_of(portico_db, customer)
    assert (item["product"], item["quantity"]) == ("Team", 8)

    # Back. JS on: to the plan form's URL, which htmx pushed, restored whole from the server.
    # JS off: to the preview, whose form the browser posts again; the change is made by now, so
    # that is the plan form saying so.
    page.go_back()
    expect(heading(page, "Change plan")).to_be_visible()
    if js:
        expect(page).to_have_title(page_title("Change plan"))
        expect(page.get_by_label("Quantity", exact=True)).to_have_value("8")
    else:
        expect(page).to_have_title(page_title("Error: Change plan"))
        expect(page.get_by_role("alert")).to_contain_text("Choose a different plan or quantity")
    expect(page.get_by_role("navigation", name="Account")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_count(1)


def test_cancel_at_period_end_then_renew(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("cancel_renew", js), name="Robin Back")
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    open_page(page, js, LIST, "Subscriptions")
    card = subscription_card(page, customer)
    expect(card.locator("dt", has_text="Access ends")).to_have_count(0)

    follow(page, js, link(card, "Cancel subscription"))
    expect(heading(page, "Cancel subscription")).to_be_visible()
    expect_focus_after_swap(js, heading(page, "Cancel subscription"))
    expect(page.get_by_role("main")).to_contain_text("If you cancel, your subscription ends on")
    page.get_by_role("radio", name="It's too expensive").check()
    follow(page, js, button(page, "Continue"))

    # The demo's retention offer comes first; the cancellation goes on below it.
    expect(heading(page, "Before you go")).to_be_visible()
    expect_focus_after_swap(js, heading(page, "Before you go"))
    expect(page).to_have_title(page_title("Before you go"))
    main = page.get_by_role("main")
    expect(main.locator("dt", has_text="Reason").locator("+ dd")).to_have_text("It's too expensive")
    expect(main).to_contain_text("You keep access until then")
    follow(page, js, button(page, "Confirm cancellation"))

    expect(heading(page, "Subscriptions")).to_be_visible()
    expect(flash(page)).to_contain_text(
        re.compile(r"Your subscription was canceled\. You have access until \w+")
    )
    ends = card.locator("dt", has_text="Access ends")
    expect(ends).to_be_visible()
    expect(ends.locator("+ dd")).to_have_text(re.compile(r"\d{4}"))
    expect(card.get_by_role("heading", level=2)).to_contain_text("Cancels soon")
    row = subscription_row(portico_db, customer)
    assert row["cancel_at_period_end"] == 1
    assert row["cancellation_details_feedback"] == "too_expensive"

    follow(page, js, button(card, "Renew subscription"))
    expect(flash(page)).to_contain_text("Your subscription was renewed.")
    expect(card.locator("dt", has_text="Access ends")).to_have_count(0)
    expect(card.locator("dt", has_text="Next charge")).to_be_visible()
    expect(button(card, "Renew subscription")).to_have_count(0)
    expect(link(card, "Cancel subscription")).to_be_visible()
    assert_stayed_in_document(page, js)
    if js:
        assert_accessible(page, "the list after renewing")
    row = subscription_row(portico_db, customer)
    assert (row["status"], row["cancel_at_period_end"], row["cancel_at"]) == ("active", 0, None)


def immediately(features: dict) -> None:
    features["subscription_cancel"]["mode"] = "immediately"


def test_cancel_immediately_declining_the_offer(
    page: Page,
    js: bool,
    live_server: LiveServer,
    mailbox: Mailbox,
    fresh_email: Fresh,
    portico_db: PorticoDatabase,
) -> None:
    customer = clone_customer(portico_db, journey_email("cancel_now", js), name="Morgan Leaving")
    sign_in_to_portal(page, live_server, js, mailbox, fresh_email, customer.email)
    with changed_features(portico_db, immediately):
        open_page(page, js, LIST, "Subscriptions")
        card = subscription_card(page, customer)
        follow(page, js, link(card, "Cancel subscription"))
        expect(heading(page, "Cancel subscription")).to_be_visible()
        posts = PostCounter(page)

        expect(page.get_by_role("main")).to_contain_text(
            "your subscription ends immediately and you lose access straight away"
        )
        page.get_by_role("radio", name="I found an alternative").check()
        page.get_by_label("Anything else you would like to tell us?").fill("Moving on, thanks.")
        follow(page, js, button(page, "Continue"))

        expect(heading(page, "Before you go")).to_be_visible()
        offer = page.locator("#offer")
        expect(offer).to_contain_text("Stay with us and get 20% off for 3 months.")
        expect(button(offer, "Accept offer")).to_be_visible()
        main = page.get_by_role("main")
        expect(main).to_contain_text("Your subscription will end immediately")
        expect(main.locator("dt", has_text="Your comment").locator("+ dd")).to_have_text(
            "Moving on, thanks."
        )
        follow(page, js, button(page, "Confirm cancellation"))

        expect(heading(page, "Subscriptions")).to_be_visible()
        expect(flash(page)).to_contain_text("Your subscription was canceled immediately.")
        expect(card.get_by_role("heading", level=2)).to_contain_text("Canceled")
        expect(link(card, "Cancel subscription")).to_have_count(0)
        assert posts.count <= 2, f"{posts.count} form posts: {posts.posts}"
        assert_stayed_in_document(page, js)
        if js:
            assert_accessible(page, "the list with a canceled subscription and its flash")
    row = subscription_row(portico_db, customer)
    assert row["status"] == "canceled"
    assert row["ended_at"] is not None
    assert row["cancellation_details_feedback"] == "switched_service"
    assert row["discount_coupon"] is None  # the offer was declined
